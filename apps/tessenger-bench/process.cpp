#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace bench {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::uint64_t status_field(pid_t pid, std::string_view name) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ':') {
      return std::strtoull(line.c_str() + name.size() + 1, nullptr, 10);
    }
  }
  throw std::runtime_error(fmt::format("no {} in /proc/{}/status", name, pid));
}

std::chrono::nanoseconds from_timeval(const timeval& tv) {
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

std::chrono::nanoseconds cpu_of(int who) {
  rusage usage{};
  ::getrusage(who, &usage);
  return from_timeval(usage.ru_utime) + from_timeval(usage.ru_stime);
}

}  // namespace

std::string user_name(std::size_t index) {
  return fmt::format("b{:05}", index);
}

std::string user_password(std::size_t index) {
  return fmt::format("p{:05}", index);
}

void write_credentials(const std::filesystem::path& file, std::size_t count) {
  std::string text;
  text.reserve(count * 14);
  for (std::size_t i = 0; i < count; ++i)
    fmt::format_to(std::back_inserter(text), "{} {}\n", user_name(i), user_password(i));
  std::ofstream out(file, std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/tessenger-bench-XXXXXX", base && *base ? base : "/tmp");
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(fmt::format("mkdtemp: {}", std::strerror(errno)));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::chrono::nanoseconds process_cpu(pid_t pid) {
  const auto text = read_file(fmt::format("/proc/{}/stat", pid));
  // The command name may contain spaces: fields are counted after its ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) throw std::runtime_error("unreadable /proc/PID/stat");
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int field = 3; field < 14; ++field)
    fields >> skip;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  fields >> utime >> stime;
  const auto ticks = static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
  return std::chrono::nanoseconds((utime + stime) * 1'000'000'000ull / ticks);
}

std::chrono::nanoseconds self_cpu() {
  return cpu_of(RUSAGE_SELF);
}

std::chrono::nanoseconds thread_cpu() {
  return cpu_of(RUSAGE_THREAD);
}

std::uint64_t process_rss(pid_t pid) {
  return status_field(pid, "VmRSS") * 1024;
}

int process_threads(pid_t pid) {
  return static_cast<int>(status_field(pid, "Threads"));
}

std::size_t raise_fd_limit(std::size_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min<rlim_t>(wanted, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

std::filesystem::path default_server_binary() {
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  const auto build_tree =
      self.parent_path().parent_path() / "tessenger-server" / "tessenger-server";
  if (std::filesystem::exists(build_tree)) return build_tree;
  return self.parent_path() / "tessenger-server";
}

void stop_child(pid_t pid, std::chrono::milliseconds grace) {
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

pid_t spawn_child(std::vector<std::string> args, const std::filesystem::path& output,
                  const std::filesystem::path& errors) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    const auto redirect = [](const std::filesystem::path& file, int target) {
      const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd < 0 || ::dup2(fd, target) < 0) std::_Exit(127);
      ::close(fd);
    };
    redirect(output, STDOUT_FILENO);
    redirect(errors, STDERR_FILENO);
    ::execvp(argv[0], argv.data());
    std::_Exit(127);
  }
  return child;
}

ServerUnderTest::ServerUnderTest(const Options& options) {
  if (!options.attach.empty()) {
    const auto colon = options.attach.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("--server wants HOST:PORT");
    host_ = options.attach.substr(0, colon);
    if (host_.size() > 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
    port_ = static_cast<std::uint16_t>(std::stoul(options.attach.substr(colon + 1)));
    pid_ = options.attach_pid;
    return;
  }

  const auto binary = options.binary.empty() ? default_server_binary() : options.binary;
  if (!std::filesystem::exists(binary)) {
    throw std::runtime_error(
        fmt::format("tessenger-server not found at {}; use --server-binary", binary.string()));
  }
  dir_.emplace();
  const auto credentials = dir_->path() / "credentials.txt";
  const auto data = options.data_dir.empty() ? dir_->path() / "data" : options.data_dir;
  const auto log = dir_->path() / "server.log";
  std::filesystem::create_directories(data);
  write_credentials(credentials, options.users);

  // The bench is a trusted load generator: one address opening thousands of
  // connections and sending flat out is exactly what the abuse limits stop.
  std::vector<std::string> args{binary.string(),
                                "127.0.0.1",
                                "0",
                                "1000",
                                "-q",
                                "--credentials",
                                credentials.string(),
                                "--data-dir",
                                data.string(),
                                "--max-connections",
                                "0",
                                "--max-connections-per-ip",
                                "0",
                                "--message-rate",
                                "0",
                                "--store",
                                options.store};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  const pid_t child = spawn_child(std::move(args), log, log);
  pid_ = child;
  owned_ = true;

  // The server prints one line once it listens; its log goes to a file so a
  // chatty server can never block on a full pipe.
  constexpr std::string_view banner = "TESSENGER server listening on ";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const auto text = read_file(log);
    if (const auto at = text.find(banner); at != std::string::npos) {
      const auto end = text.find('\n', at);
      if (end != std::string::npos) {
        const auto line = text.substr(at, end - at);
        port_ = static_cast<std::uint16_t>(std::stoul(line.substr(line.rfind(':') + 1)));
        return;
      }
    }
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      owned_ = false;
      throw std::runtime_error(fmt::format("tessenger-server exited at start:\n{}", text));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop_child(child, std::chrono::seconds(1));
      owned_ = false;
      throw std::runtime_error("tessenger-server did not start within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ServerUnderTest::~ServerUnderTest() {
  if (owned_) stop_child(pid_, std::chrono::seconds(10));
}

}  // namespace bench
