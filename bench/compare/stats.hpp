// Distribution-free statistics for comparing two sets of benchmark repetitions: Mann-Whitney U (exact
// or normal approximation with tie correction), the Hodges-Lehmann shift estimate with its
// distribution-free confidence interval, multiple-comparison corrections, and the coefficient of
// variation used by the noise preflight. The normal CDF and quantile come from Boost.Math.
//
// Conventions (those of scipy.stats.mannwhitneyu and R's wilcox.test, so values can be checked against
// them): U counts the pairs (x_i, y_j) with x_i > y_j, ties counting 1/2; the two-sided p-value is
// 2 * P(U' >= max(U, mn - U)) clipped to 1.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace infermark::stats {

// Sample sizes up to this (per side) use the exact null distribution of U when there are no ties; larger
// samples, or samples with ties, use the normal approximation.
inline constexpr int kExactMaxPerSide = 50;

double median(std::vector<double> v);  // throws std::invalid_argument on an empty vector
double mean(const std::vector<double>& v);
// Sample standard deviation / mean; 0 for fewer than two values.
double coefficient_of_variation(const std::vector<double>& v);

double normal_cdf(double z);
double normal_quantile(double p);  // 0 < p < 1

// P(U = u) for u = 0..m*n under H0 (no ties), by the recurrence on the largest observation.
std::vector<double> mwu_exact_pmf(int m, int n);

struct mwu_result {
  double u = 0;       // U of the first sample
  double p = 1;       // two-sided p-value
  bool exact = false; // exact null distribution (no ties, both sides <= kExactMaxPerSide)
  bool ties = false;  // ties among the pooled values
};
// Two-sided Mann-Whitney U test. Throws std::invalid_argument when a sample is empty.
// The normal approximation uses scipy's tie-corrected variance and a 0.5 continuity correction.
mwu_result mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y);

struct shift_estimate {
  double estimate = 0;       // Hodges-Lehmann: median of all y_j - x_i
  double lower = 0, upper = 0;
  bool ci_available = false; // false when the samples are too small for the requested confidence
  double confidence = 0;     // achieved coverage of [lower, upper] (>= 1 - alpha when available)
  bool exact = false;        // CI from the exact U distribution (else the normal approximation)
};
// Shift of y relative to x (y - x) with the distribution-free CI at level 1 - alpha inverted from the
// Mann-Whitney test (Bauer 1972; R's wilcox.test(conf.int = TRUE)).
shift_estimate hodges_lehmann(const std::vector<double>& x, const std::vector<double>& y, double alpha);

// Adjusted p-values for a family of tests (same order as the input).
std::vector<double> holm(const std::vector<double>& p);                // family-wise error rate
std::vector<double> benjamini_hochberg(const std::vector<double>& p);  // false discovery rate

// The smallest number of repetitions per side (equal sides, no ties) for which a two-sided exact test
// can reach p < alpha at all.
int min_repetitions_for(double alpha);

}  // namespace infermark::stats
