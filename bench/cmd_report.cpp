// `infermark report RESULTS.json [-o report.html|report.md]`: the results as a self-contained HTML page
// (host roofline chart, estimate bar charts, tables, machine context) or Markdown; Markdown on stdout
// when no output file is given.
#include <fmt/format.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/report/report.hpp"
#include "bench/report/text_file.hpp"
#include "bench/results.hpp"

namespace infermark {

command report_command() {
  return {"report", "turn a results file into a self-contained HTML page or Markdown (roofline, estimates, tables)",
          [](CLI::App& sub, const global_options&) -> std::function<int()> {
            auto file = std::make_shared<std::string>();
            auto out = std::make_shared<std::string>();
            sub.add_option("results", *file, "results file written by 'infermark run'")->required();
            sub.add_option("-o,--out", *out, "write the report here; .html or .md (default: Markdown on stdout)");
            return [file, out] {
              // Check the output before reading anything, so a typo fails fast and leaves nothing behind.
              std::optional<report::report_format> format;
              if (!out->empty()) {
                format = report::format_for_path(*out);
                check_writable(*out);
              }
              const auto data = report::read_report_file(*file);
              if (!format) {
                std::cout << report::render_markdown(data);
                return 0;
              }
              report::write_text_atomically(*out, *format == report::report_format::html ? report::render_html(data)
                                                                                    : report::render_markdown(data));
              std::cerr << fmt::format("report: {}\n", *out);
              return 0;
            };
          }};
}

}  // namespace infermark
