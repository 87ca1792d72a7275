#include "bench/compare/process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <stdexcept>

namespace infermark {
namespace {

// Builds the child's argv/env before fork so the child only calls async-signal-safe functions.
struct prepared {
  std::vector<std::string> args;
  std::vector<char*> argv;
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
};

prepared prepare(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env) {
  if (args.empty()) throw std::invalid_argument("run_process: empty argv");
  prepared p;
  p.args = args;
  for (auto& a : p.args) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string s = *e;
    const std::string key = s.substr(0, s.find('='));
    bool overridden = false;
    for (const auto& [k, v] : env) overridden = overridden || k == key;
    if (!overridden) p.env_strings.push_back(s);
  }
  for (const auto& [k, v] : env) p.env_strings.push_back(k + "=" + v);
  for (auto& s : p.env_strings) p.envp.push_back(s.data());
  p.envp.push_back(nullptr);
  return p;
}

int wait_for(pid_t pid, const std::string& program) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(fmt::format("waiting for '{}' failed: {}", program, std::strerror(errno)));
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 127)
      throw std::runtime_error(fmt::format("cannot start '{}' (not found or not executable)", program));
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace

int run_process(const process_spec& spec) {
  auto p = prepare(spec.argv, spec.env);
  int log_fd = -1;
  if (!spec.log.empty()) {
    log_fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
      throw std::runtime_error(fmt::format("cannot open log file '{}': {}", spec.log.string(), std::strerror(errno)));
  }
  const std::string cwd = spec.cwd.string();
  const pid_t pid = ::fork();
  if (pid < 0) {
    if (log_fd >= 0) ::close(log_fd);
    throw std::runtime_error(fmt::format("cannot start '{}': fork failed: {}", spec.argv[0], std::strerror(errno)));
  }
  if (pid == 0) {
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::execvpe(p.argv[0], p.argv.data(), p.envp.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  return wait_for(pid, spec.argv[0]);
}

std::pair<int, std::string> capture_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd) {
  auto p = prepare(argv, {});
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("cannot start '{}': pipe failed: {}", argv[0], std::strerror(errno)));
  const std::string dir = cwd.string();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(fmt::format("cannot start '{}': fork failed: {}", argv[0], std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(fds[1], 1);
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) ::_exit(127);
    ::execvpe(p.argv[0], p.argv.data(), p.envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  return {wait_for(pid, argv[0]), out};
}

std::string tail_of(const std::filesystem::path& file, int lines) {
  std::ifstream f(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(f, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "  | " + l + "\n";
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    if (!a.empty() && a.find_first_of(" '\"$\\*?[]()|&;<>`!#~") == std::string::npos) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

std::filesystem::path self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error(fmt::format("cannot find the running executable: {}", ec.message()));
  return p;
}

}  // namespace infermark
