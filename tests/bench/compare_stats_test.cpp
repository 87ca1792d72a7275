// The statistics behind `infermark compare`, checked against values computed independently.
// Reference p-values: scipy 1.10.1 (Debian bookworm python3-scipy), computed offline with
//   from scipy.stats import mannwhitneyu; mannwhitneyu(x, y, method='exact' | 'asymptotic')
// (asymptotic = normal approximation with tie correction and continuity correction, scipy's default).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "bench/compare/stats.hpp"

namespace infermark::stats {
namespace {

TEST(CompareStats, MannWhitneyExactMatchesScipy) {
  // mannwhitneyu([1.1,2.3,0.7,3.4,2.9], [4.1,3.8,5.2,2.2,4.9,6.0], method='exact') -> U=3.0, p=0.030303030303030304
  const auto r = mann_whitney_u({1.1, 2.3, 0.7, 3.4, 2.9}, {4.1, 3.8, 5.2, 2.2, 4.9, 6.0});
  EXPECT_TRUE(r.exact);
  EXPECT_DOUBLE_EQ(r.u, 3.0);
  EXPECT_NEAR(r.p, 0.030303030303030304, 1e-12);

  // 10 vs 10: U=2.0, p=4.330035289787612e-05
  const auto r10 = mann_whitney_u({10.2, 10.5, 9.8, 10.1, 10.0, 10.3, 9.9, 10.4, 10.6, 9.7},
                                  {10.9, 11.3, 10.7, 11.0, 11.2, 10.8, 11.4, 10.45, 11.1, 10.65});
  EXPECT_TRUE(r10.exact);
  EXPECT_DOUBLE_EQ(r10.u, 2.0);
  EXPECT_NEAR(r10.p, 4.330035289787612e-05, 1e-15);

  // Complete separation 4 vs 4: p = 2 / C(8, 4) = 0.02857142857142857
  const auto r4 = mann_whitney_u({1, 2, 3, 4}, {5, 6, 7, 8});
  EXPECT_DOUBLE_EQ(r4.u, 0.0);
  EXPECT_NEAR(r4.p, 0.02857142857142857, 1e-15);
  // The test is symmetric: swapping the samples gives U' = mn - U and the same p.
  const auto r4s = mann_whitney_u({5, 6, 7, 8}, {1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(r4s.u, 16.0);
  EXPECT_NEAR(r4s.p, r4.p, 1e-15);
}

TEST(CompareStats, MannWhitneyAsymptoticWithTiesMatchesScipy) {
  // mannwhitneyu([1,2,2,3,4,5,5,6], [3,4,4,5,6,7,8,8,9], method='asymptotic') -> U=14.0, p=0.03714012623439529
  const auto r = mann_whitney_u({1, 2, 2, 3, 4, 5, 5, 6}, {3, 4, 4, 5, 6, 7, 8, 8, 9});
  EXPECT_FALSE(r.exact);
  EXPECT_TRUE(r.ties);
  EXPECT_DOUBLE_EQ(r.u, 14.0);
  EXPECT_NEAR(r.p, 0.03714012623439529, 1e-12);
}

TEST(CompareStats, MannWhitneyLargeSamplesUseTheNormalApproximation) {
  // 60 vs 55 values (numpy default_rng(7) normal(10,1) and normal(10.5,1), rounded to 6 decimals):
  // method='asymptotic' -> U=974.0, p=0.00015552716448697697
  const std::vector<double> a = {10.00123, 10.298746, 9.725862, 9.109408, 9.545329, 9.008353, 10.060144, 11.340215,
      9.507793, 9.379525, 10.489842, 10.356887, 10.105414, 9.069532, 9.970748, 10.695303, 8.655785, 9.542384, 8.098777,
      8.710462, 8.158265, 9.764909, 8.732554, 10.271264, 10.156751, 9.813069, 7.48324, 9.461307, 9.951499, 10.113309,
      8.469864, 9.522247, 9.021481, 9.191163, 11.060899, 9.192465, 9.967478, 10.88439, 9.4164, 9.888298, 10.110464,
      10.063782, 8.774944, 10.07614, 11.358823, 8.452855, 10.859383, 10.119354, 9.35853, 12.000417, 10.76226,
      8.800711, 10.074516, 10.57669, 9.811218, 10.68291, 9.933483, 10.667248, 11.438523, 9.324338};
  const std::vector<double> b = {10.703139, 10.036692, 10.627268, 9.312805, 9.920698, 10.303804, 11.398764,
      11.645222, 9.176472, 9.705358, 11.146903, 8.50758, 10.03683, 10.402713, 11.757015, 11.189404, 10.172787,
      10.131424, 10.249805, 12.023529, 10.071975, 10.19632, 10.852589, 10.37923, 10.302716, 9.385933, 10.488479,
      10.056419, 11.666128, 11.153089, 10.475856, 11.168381, 10.16013, 11.552126, 10.4946, 11.083382, 9.209107,
      10.84668, 8.811796, 8.464671, 10.195523, 9.600072, 10.664053, 12.744757, 9.668277, 9.876056, 10.705404,
      10.993013, 10.323594, 10.29407, 11.202463, 11.019908, 9.466324, 10.420819, 10.535287};
  const auto r = mann_whitney_u(a, b);
  EXPECT_FALSE(r.exact);
  EXPECT_DOUBLE_EQ(r.u, 974.0);
  EXPECT_NEAR(r.p, 0.00015552716448697697, 1e-12);
}

TEST(CompareStats, ExactDistributionIsTheKnownOne) {
  // m = n = 3: the 20 orderings give U = 0..9 with counts 1,1,2,3,3,3,3,2,1,1.
  const auto pmf = mwu_exact_pmf(3, 3);
  const double counts[] = {1, 1, 2, 3, 3, 3, 3, 2, 1, 1};
  ASSERT_EQ(pmf.size(), 10u);
  for (int u = 0; u < 10; ++u) EXPECT_NEAR(pmf[u] * 20, counts[u], 1e-12) << "U=" << u;
  const auto big = mwu_exact_pmf(40, 45);
  EXPECT_NEAR(std::accumulate(big.begin(), big.end(), 0.0), 1.0, 1e-12);
  EXPECT_NEAR(big[0], big[40 * 45], 1e-30);  // symmetric
}

TEST(CompareStats, HodgesLehmannHandExample) {
  // x = {1,2,3}, y = {2.5,4,6} (no ties in the pooled sample, so the exact U distribution applies): the
  // nine differences y_j - x_i sorted are -0.5,0.5,1,1.5,2,3,3,4,5; the estimate is their median, 2. With m = n = 3, P(U <= 0) = 1/20 = 0.05 >= alpha/2 for alpha = 0.05: no 95% interval.
  const auto s95 = hodges_lehmann({1, 2, 3}, {2.5, 4, 6}, 0.05);
  EXPECT_DOUBLE_EQ(s95.estimate, 2.0);
  EXPECT_FALSE(s95.ci_available);
  // alpha = 0.3: P(U<=0)=0.05, P(U<=1)=0.10 < 0.15 <= P(U<=2)=0.20, so k = 2: [d_(2), d_(8)] = [0.5, 4] with
  // coverage 1 - 2 * 0.10 = 0.8.
  const auto s70 = hodges_lehmann({1, 2, 3}, {2.5, 4, 6}, 0.3);
  ASSERT_TRUE(s70.ci_available);
  EXPECT_TRUE(s70.exact);
  EXPECT_DOUBLE_EQ(s70.lower, 0.5);
  EXPECT_DOUBLE_EQ(s70.upper, 4.0);
  EXPECT_NEAR(s70.confidence, 0.8, 1e-12);
  // With ties in the pooled sample the normal approximation is used instead.
  EXPECT_FALSE(hodges_lehmann({1, 2, 3}, {2, 4, 6}, 0.3).exact);
}

TEST(CompareStats, HodgesLehmannRecoversAShiftAndCoversIt) {
  std::vector<double> x, y;
  for (int i = 0; i < 12; ++i) {
    x.push_back(std::sin(i * 1.7) * 0.01);          // spread +-1%
    y.push_back(0.1 + std::sin(i * 2.3 + 1) * 0.01); // shifted by 0.1
  }
  const auto s = hodges_lehmann(x, y, 0.05);
  ASSERT_TRUE(s.ci_available);
  EXPECT_NEAR(s.estimate, 0.1, 0.005);
  EXPECT_LT(s.lower, 0.1);
  EXPECT_GT(s.upper, 0.1);
  EXPECT_GT(s.lower, 0.08);
  EXPECT_LT(s.upper, 0.12);
  EXPECT_GE(s.confidence, 0.95);
}

TEST(CompareStats, HolmAndBenjaminiHochberg) {
  // p = {0.01, 0.04, 0.03, 0.005}: Holm sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)
  const auto h = holm({0.01, 0.04, 0.03, 0.005});
  EXPECT_NEAR(h[3], 0.02, 1e-15);
  EXPECT_NEAR(h[0], 0.03, 1e-15);
  EXPECT_NEAR(h[2], 0.06, 1e-15);
  EXPECT_NEAR(h[1], 0.06, 1e-15);
  // BH: sorted 0.005,0.01,0.03,0.04 -> 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04 (then running min)
  const auto b = benjamini_hochberg({0.01, 0.04, 0.03, 0.005});
  EXPECT_NEAR(b[3], 0.02, 1e-15);
  EXPECT_NEAR(b[0], 0.02, 1e-15);
  EXPECT_NEAR(b[2], 0.04, 1e-15);
  EXPECT_NEAR(b[1], 0.04, 1e-15);
  EXPECT_NEAR(holm({0.9, 0.8})[0], 1.0, 1e-15);  // clipped
}

TEST(CompareStats, SmallHelpers) {
  EXPECT_EQ(min_repetitions_for(0.05), 4);  // 2/C(6,3) = 0.1, 2/C(8,4) = 0.0286
  EXPECT_EQ(min_repetitions_for(0.01), 5);  // 2/C(10,5) = 0.0079
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2.0);
  EXPECT_DOUBLE_EQ(median({4, 1, 2, 3}), 2.5);
  EXPECT_NEAR(coefficient_of_variation({9, 10, 11}), 0.1, 1e-12);  // sd 1, mean 10
  EXPECT_DOUBLE_EQ(coefficient_of_variation({5}), 0.0);
  EXPECT_NEAR(normal_cdf(1.959963984540054), 0.975, 1e-12);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-12);
  EXPECT_THROW(normal_quantile(1.0), std::invalid_argument);
  EXPECT_THROW(mann_whitney_u({}, {1.0}), std::invalid_argument);
  EXPECT_THROW(hodges_lehmann({1.0}, {2.0}, 1.5), std::invalid_argument);
}

}  // namespace
}  // namespace infermark::stats
