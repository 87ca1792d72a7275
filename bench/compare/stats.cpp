#include "bench/compare/stats.hpp"

#include <boost/math/distributions/normal.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace infermark::stats {
namespace {

void require_nonempty(const std::vector<double>& x, const std::vector<double>& y, const char* what) {
  if (x.empty() || y.empty())
    throw std::invalid_argument(fmt::format("{}: both samples need at least one value (got {} and {})", what,
                                            x.size(), y.size()));
}

// Sum over tie groups of t^3 - t in the pooled sample (0 when there are no ties).
double tie_term(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<double> all(x);
  all.insert(all.end(), y.begin(), y.end());
  std::sort(all.begin(), all.end());
  double term = 0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j < all.size() && all[j] == all[i]) ++j;
    const double t = static_cast<double>(j - i);
    term += t * t * t - t;
    i = j;
  }
  return term;
}

// Standard deviation of U under H0 with the tie correction (scipy's _get_mwu_z).
double u_sigma(std::size_t m, std::size_t n, double ties) {
  const double mm = static_cast<double>(m), nn = static_cast<double>(n), big = mm + nn;
  const double corr = big > 1 ? ties / (big * (big - 1)) : 0.0;
  return std::sqrt(mm * nn / 12.0 * ((big + 1) - corr));
}

bool use_exact(std::size_t m, std::size_t n, bool ties) {
  return !ties && m <= static_cast<std::size_t>(kExactMaxPerSide) && n <= static_cast<std::size_t>(kExactMaxPerSide);
}

}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) throw std::invalid_argument("median of an empty sample");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean(const std::vector<double>& v) {
  if (v.empty()) throw std::invalid_argument("mean of an empty sample");
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double coefficient_of_variation(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double mu = mean(v);
  double ss = 0;
  for (double x : v) ss += (x - mu) * (x - mu);
  const double sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return mu != 0 ? sd / std::fabs(mu) : 0.0;
}

double normal_cdf(double z) { return boost::math::cdf(boost::math::normal(), z); }

double normal_quantile(double p) {
  if (!(p > 0 && p < 1)) throw std::invalid_argument(fmt::format("normal quantile of {}: p must be in (0, 1)", p));
  return boost::math::quantile(boost::math::normal(), p);
}

std::vector<double> mwu_exact_pmf(int m, int n) {
  if (m < 0 || n < 0) throw std::invalid_argument(fmt::format("mwu_exact_pmf({}, {}): sizes must be >= 0", m, n));
  // counts[j] holds the number of orderings of i x's and j y's giving each U (x_a > y_b pairs); the largest
  // observation is either an x (beating all j y's: U - j with i - 1 x's) or a y (U with j - 1 y's). Counts
  // are at most C(100, 50) ~ 1e29, exact enough in doubles, and only ever added.
  std::vector<std::vector<double>> prev(static_cast<std::size_t>(n) + 1, std::vector<double>{1.0});
  for (int i = 1; i <= m; ++i) {
    std::vector<std::vector<double>> cur(static_cast<std::size_t>(n) + 1);
    cur[0] = {1.0};
    for (int j = 1; j <= n; ++j) {
      std::vector<double> c(static_cast<std::size_t>(i) * j + 1, 0.0);
      const auto& a = prev[j];      // i - 1 x's, j y's: sizes (i-1)*j + 1
      const auto& b = cur[j - 1];   // i x's, j - 1 y's: sizes i*(j-1) + 1
      for (std::size_t u = 0; u < a.size(); ++u) c[u + j] += a[u];
      for (std::size_t u = 0; u < b.size(); ++u) c[u] += b[u];
      cur[j] = std::move(c);
    }
    prev = std::move(cur);
  }
  std::vector<double> pmf = prev[n];
  const double total = std::accumulate(pmf.begin(), pmf.end(), 0.0);
  for (double& v : pmf) v /= total;
  return pmf;
}

mwu_result mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y) {
  require_nonempty(x, y, "Mann-Whitney U");
  mwu_result r;
  for (double a : x)
    for (double b : y) r.u += a > b ? 1.0 : a == b ? 0.5 : 0.0;
  const double ties = tie_term(x, y);
  r.ties = ties > 0;
  const double mn = static_cast<double>(x.size()) * static_cast<double>(y.size());
  const double u_big = std::max(r.u, mn - r.u);
  if (use_exact(x.size(), y.size(), r.ties)) {
    r.exact = true;
    const auto pmf = mwu_exact_pmf(static_cast<int>(x.size()), static_cast<int>(y.size()));
    double sf = 0;
    for (std::size_t u = static_cast<std::size_t>(std::llround(u_big)); u < pmf.size(); ++u) sf += pmf[u];
    r.p = std::min(1.0, 2.0 * sf);
    return r;
  }
  const double sigma = u_sigma(x.size(), y.size(), ties);
  if (sigma <= 0) {  // every value equal: no evidence of a difference
    r.p = 1.0;
    return r;
  }
  const double z = (u_big - mn / 2.0 - 0.5) / sigma;
  r.p = std::clamp(2.0 * normal_cdf(-z), 0.0, 1.0);
  return r;
}

shift_estimate hodges_lehmann(const std::vector<double>& x, const std::vector<double>& y, double alpha) {
  require_nonempty(x, y, "Hodges-Lehmann");
  if (!(alpha > 0 && alpha < 1)) throw std::invalid_argument(fmt::format("alpha {} must be in (0, 1)", alpha));
  std::vector<double> d;
  d.reserve(x.size() * y.size());
  for (double b : y)
    for (double a : x) d.push_back(b - a);
  std::sort(d.begin(), d.end());
  shift_estimate s;
  const std::size_t mn = d.size();
  s.estimate = mn % 2 ? d[mn / 2] : 0.5 * (d[mn / 2 - 1] + d[mn / 2]);

  const double ties = tie_term(x, y);
  std::size_t k = 0;  // the CI is [d_(k), d_(mn+1-k)] (1-based); 0 = not available at this level
  if (use_exact(x.size(), y.size(), ties > 0)) {
    s.exact = true;
    const auto pmf = mwu_exact_pmf(static_cast<int>(x.size()), static_cast<int>(y.size()));
    // qwilcox(alpha/2): the smallest q with P(U <= q) >= alpha/2; the coverage is 1 - 2 P(U <= q - 1).
    double cdf = 0;
    std::size_t q = 0;
    for (; q < pmf.size(); ++q) {
      if (cdf + pmf[q] >= alpha / 2) break;
      cdf += pmf[q];
    }
    k = q;
    s.confidence = 1.0 - 2.0 * cdf;
  } else {
    const double sigma = u_sigma(x.size(), y.size(), ties);
    const double z = normal_quantile(1.0 - alpha / 2);
    const double kk = std::floor(static_cast<double>(mn) / 2.0 + 0.5 - z * sigma);
    k = kk >= 1 ? static_cast<std::size_t>(kk) : 0;
    if (sigma > 0 && k >= 1)
      s.confidence = 1.0 - 2.0 * normal_cdf((static_cast<double>(k) - 0.5 - static_cast<double>(mn) / 2.0) / sigma);
  }
  if (k >= 1 && k <= (mn + 1) / 2) {
    s.ci_available = true;
    s.lower = d[k - 1];
    s.upper = d[mn - k];
  } else {
    s.lower = -INFINITY;
    s.upper = INFINITY;
    s.confidence = 0;
  }
  return s;
}

std::vector<double> holm(const std::vector<double>& p) {
  const std::size_t K = p.size();
  std::vector<std::size_t> idx(K);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(K);
  double running = 0;
  for (std::size_t r = 0; r < K; ++r) {
    running = std::max(running, std::min(1.0, static_cast<double>(K - r) * p[idx[r]]));
    adj[idx[r]] = running;
  }
  return adj;
}

std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
  const std::size_t K = p.size();
  std::vector<std::size_t> idx(K);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(K);
  double running = 1.0;
  for (std::size_t r = K; r-- > 0;) {
    running = std::min(running, std::min(1.0, static_cast<double>(K) / static_cast<double>(r + 1) * p[idx[r]]));
    adj[idx[r]] = running;
  }
  return adj;
}

int min_repetitions_for(double alpha) {
  if (!(alpha > 0 && alpha < 1)) throw std::invalid_argument(fmt::format("alpha {} must be in (0, 1)", alpha));
  // Smallest two-sided exact p with n per side: 2 / C(2n, n).
  double c = 2;  // C(2, 1)
  for (int n = 1; n <= kExactMaxPerSide; ++n) {
    if (n > 1) c = c * (2.0 * n) * (2.0 * n - 1) / (static_cast<double>(n) * n);
    if (2.0 / c < alpha) return n;
  }
  return kExactMaxPerSide;
}

}  // namespace infermark::stats
