// Atomic text output for reports: a temporary file beside the target, fsync, rename, so a reader (or a
// browser reloading the page) never sees a half-written report.
#pragma once
#include <filesystem>
#include <string_view>

namespace infermark::report {

// Throws std::runtime_error naming `path` and the reason when it cannot be written; leaves no temporary
// file behind.
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace infermark::report
