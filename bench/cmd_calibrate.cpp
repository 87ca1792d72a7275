// `infermark calibrate`: fit the efficiency factors from profiles/calibration/*.toml, write them, and
// report each calibration point's leave-one-out error.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "bench/command.hpp"
#include "bench/results.hpp"
#include "profiles/model/calibration.hpp"

namespace infermark {

command calibrate_command() {
  return {"calibrate", "fit the per-target x kernel-class x dtype efficiency factors; report leave-one-out errors",
          [](CLI::App& sub, const global_options&) -> std::function<int()> {
            auto out = std::make_shared<std::string>();  // empty: <profiles dir>/calibration/fitted.json
            auto format = std::make_shared<std::string>("table");
            sub.add_option("--out", *out, "where to write the fitted factors (JSON; default <profiles dir>/calibration/fitted.json)");
            sub.add_option("--format", *format, "table | json (what is printed)")->capture_default_str();
            return [out, format] {
              if (*format != "table" && *format != "json")
                throw std::invalid_argument(fmt::format("unknown format '{}'; valid choices: table, json", *format));
              const std::filesystem::path dir = profiles_dir() / "calibration";
              if (out->empty()) *out = (dir / "fitted.json").string();
              check_writable(*out);
              const profile_db db = profile_db::load(profiles_dir());
              const efficiency_model model(db, load_calibration(dir), load_overheads(dir));
              const nlohmann::json fitted = calibration_json(model);
              write_json_atomically(*out, fitted);
              if (*format == "json") {
                std::cout << fitted.dump(2) << "\n";
                return 0;
              }
              for (const auto& o : fitted["overheads"])
                std::cout << fmt::format("per-op overhead {}: {:.1f} us ({}; {})\n", o["vendor"].get<std::string>(), o["us"].get<double>(),
                                         o["source"].get<std::string>(), o["confidence"].get<std::string>());
              std::cout << fmt::format("{:<40} {:<13} {:<18} {:<5} {:<16} {:>8} {:>9} {:>7}  {}\n", "point", "target", "kernel", "dtype",
                                       "bound (fit)", "measured", "predicted", "error", "refit from");
              std::vector<double> errs;
              for (const auto& r : fitted["leave_one_out"]) {
                const std::string b = r["bound"].get<std::string>(), fb = r["fit_bound"].get<std::string>();
                std::cout << fmt::format("{:<40} {:<13} {:<18} {:<5} {:<16} {:>8.3f} {:>9.3f} {:>+6.1f}%  {}\n", r["id"].get<std::string>(),
                                         r["target"].get<std::string>(), r["kernel"].get<std::string>(), r["dtype"].get<std::string>(),
                                         b == fb ? b : b + " (" + fb + ")", r["measured"].get<double>(), r["predicted"].get<double>(),
                                         100 * r["rel_error"].get<double>(), r["provenance"].get<std::string>());
                errs.push_back(std::fabs(r["rel_error"].get<double>()));
              }
              std::sort(errs.begin(), errs.end());
              auto share = [&](double lim) {
                return static_cast<int>(std::count_if(errs.begin(), errs.end(), [&](double e) { return e <= lim; }));
              };
              const auto q = [&](double f) { return 100 * errs[static_cast<std::size_t>(f * static_cast<double>(errs.size() - 1) + 0.5)]; };
              std::cout << fmt::format("{} points, {} factors; median leave-one-out |error| {:.1f}% (target <= 10%); "
                                       "|error| <= 5%: {}, <= 10%: {}, <= 25%: {}, > 25%: {}; P75 {:.1f}%, P90 {:.1f}%, max {:.1f}%\n",
                                       fitted["leave_one_out"].size(), fitted["factors"].size(),
                                       100 * fitted["median_abs_loo_error"].get<double>(), share(0.05), share(0.10), share(0.25),
                                       errs.size() - share(0.25), q(0.75), q(0.90), 100 * errs.back());
              std::cout << "wrote " << *out << "\n";
              return 0;
            };
          }};
}

}  // namespace infermark
