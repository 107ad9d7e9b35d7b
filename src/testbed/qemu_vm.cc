// Launching and stopping one QEMU.
//
// Start() builds the whole argv first (no allocation between fork and exec), forks, and
// in the child points stdin at /dev/null and stdout/stderr at <name>.log before exec. The
// parent then connects to the harness QMP socket, retrying while the socket does not
// exist yet and checking between tries whether QEMU already died (a bad option, a missing
// kernel, a taken incoming port): then the error carries the tail of the log.
//
// RAM size: QEMU 7.2's migration dirty sync (cpu_physical_memory_sync_dirty_bitmap)
// takes a fast path when a RAM block's offset and length are multiples of 64 pages: it
// swaps the dirty bitmap words to zero without turning the TCG vCPU's TLB entries for
// those pages back to "notdirty". Writes that then hit a still-writable TLB entry are
// never marked dirty and never resent: with a guest dirtying memory, the destination
// ends with a few stale pages (we saw 3-5 per migration of a 256 MiB guest). Newer QEMU
// re-arms the TLB after the sync. A block length that is not a multiple of 256 KiB
// sends QEMU down its per-page path, which does reset the TLB, so by default we add
// 8 KiB (QEMU rounds -m to 8 KiB) and the RAM files then compare equal.
//
// Stop() asks politely first (QMP quit), then SIGTERM, then SIGKILL, always to the pid
// it forked and only while that pid has not been reaped (after waitpid the number may
// belong to another process).
#include "testbed/qemu_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/clock.h"

namespace gangmig::testbed {
namespace {

constexpr int kTermGraceMs = 2000;
constexpr int kPollMs = 20;
constexpr size_t kTailBytes = 1500;

// The last `max` bytes of a file, for error messages.
std::string FileTail(const std::string& path, size_t max = kTailBytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() <= max ? s : "..." + s.substr(s.size() - max);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void ExecChild(char* const* argv, int log_fd, int null_fd, bool kill_with_parent,
                            pid_t parent) {
  if (kill_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the parent died before prctl
  }
  dup2(null_fd, 0);
  dup2(log_fd, 1);
  dup2(log_fd, 2);
  execvp(argv[0], argv);
  const char msg[] = "gangmig testbed: exec failed: ";
  (void)!write(2, msg, sizeof(msg) - 1);
  const char* err = strerror(errno);
  (void)!write(2, err, strlen(err));
  (void)!write(2, "\n", 1);
  _exit(127);
}

void RemoveIfExists(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace

void VmConfig::UseImage(const GuestImage& image) {
  kernel = image.kernel;
  initrd = image.initrd;
}

VmConfig DestinationConfig(const VmConfig& source, const std::string& name,
                           const std::string& incoming) {
  VmConfig dest = source;
  dest.name = name;
  dest.incoming = incoming;
  dest.start_paused = true;
  return dest;
}

uint64_t RamBytes(const VmConfig& c) {
  return (uint64_t(c.mem_mib) << 20) + (c.work_around_tcg_dirty_bug ? 8 << 10 : 0);
}

std::string KernelCommandLine(const VmConfig& c) {
  std::string line =
      "console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check gangmig.seed=" +
      std::to_string(c.seed) + " gangmig.mem_mib=" + std::to_string(c.workload_mib) +
      " gangmig.dirty_rate=" + std::to_string(c.dirty_rate);
  if (!c.extra_append.empty()) line += " " + c.extra_append;
  return line;
}

std::vector<std::string> QemuArgv(const VmConfig& c) {
  const std::string stem = c.workdir + "/" + c.name;
  const std::string mem = c.work_around_tcg_dirty_bug ? std::to_string(RamBytes(c) >> 10) + "K"
                                                      : std::to_string(c.mem_mib) + "M";
  std::vector<std::string> argv = {
      c.qemu_binary,
      "-name",
      c.name,
      "-machine",
      "q35,accel=tcg,memory-backend=ram0",
      "-m",
      mem,
      "-object",
      "memory-backend-file,id=ram0,size=" + mem + ",mem-path=" + stem + ".ram,share=on",
      "-smp",
      "1",
      "-nodefaults",
      "-display",
      "none",
      "-serial",
      "file:" + stem + ".serial"};
  if (!c.kernel.empty()) {
    argv.insert(argv.end(),
                {"-kernel", c.kernel, "-initrd", c.initrd, "-append", KernelCommandLine(c)});
  }
  argv.insert(argv.end(), {"-qmp", "unix:" + stem + ".qmp,server=on,wait=off", "-qmp",
                           "unix:" + stem + ".harness.qmp,server=on,wait=off"});
  if (c.start_paused) argv.push_back("-S");
  if (c.incoming) argv.insert(argv.end(), {"-incoming", *c.incoming});
  argv.insert(argv.end(), c.extra_args.begin(), c.extra_args.end());
  return argv;
}

QemuVm::QemuVm(VmConfig config) : config_(std::move(config)) {}

QemuVm::~QemuVm() {
  if (!stopped_) (void)Stop();
}

Status QemuVm::Start() {
  if (!stopped_) return Error("already started");
  GANGMIG_RETURN_IF_ERROR(CheckConfig());
  std::error_code ec;
  std::filesystem::create_directories(config_.workdir, ec);
  if (ec) return Error("cannot create workdir " + config_.workdir + ": " + ec.message());
  for (const char* stale : {".qmp", ".harness.qmp", ".ram", ".serial"}) {
    RemoveIfExists(FilePath(stale));
  }
  GANGMIG_RETURN_IF_ERROR(Spawn());
  stopped_ = false;
  Status connected = ConnectHarness();
  if (!connected.ok()) (void)Stop(0);
  return connected;
}

Status QemuVm::CheckConfig() const {
  if (config_.name.empty() || config_.name.find_first_of("/,") != std::string::npos) {
    return Error("name must be non-empty without '/' or ','");
  }
  if (config_.workdir.empty() || config_.workdir.find(',') != std::string::npos) {
    return Error("workdir must be non-empty without ',' (QEMU option syntax)");
  }
  if (harness_qmp_path().size() >= sizeof(sockaddr_un::sun_path)) {
    return Error("socket path too long for a unix socket: " + harness_qmp_path());
  }
  if (config_.kernel.empty() != config_.initrd.empty()) {
    return Error("kernel and initrd must be given together");
  }
  for (const std::string& f : {config_.kernel, config_.initrd}) {
    if (!f.empty() && access(f.c_str(), R_OK) != 0) return Error("cannot read " + f);
  }
  return Status::Ok();
}

Status QemuVm::Spawn() {
  std::vector<std::string> args = QemuArgv(config_);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = open(log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return Error("cannot open " + log_path() + ": " + strerror(errno));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  pid_t pid = null_fd < 0 ? -1 : fork();
  if (pid == 0) ExecChild(argv.data(), log_fd, null_fd, config_.kill_with_parent, parent);
  int fork_errno = errno;
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) return Error(std::string("cannot fork: ") + strerror(fork_errno));
  pid_ = pid;
  reaped_ = false;
  exit_description_.clear();
  return Status::Ok();
}

Status QemuVm::ConnectHarness() {
  const int64_t deadline = MonotonicMicros() + int64_t(config_.start_timeout_ms) * 1000;
  std::string last_error = "socket not created";
  while (true) {
    if (HasExited()) {
      return Error("QEMU exited during start (" + exit_description_ + "); log " + log_path() +
                   ":\n" + FileTail(log_path()));
    }
    int left_ms = int((deadline - MonotonicMicros()) / 1000);
    if (left_ms <= 0) break;
    std::error_code ec;
    if (!std::filesystem::exists(harness_qmp_path(), ec)) {
      SleepMs(kPollMs);
      continue;
    }
    // The socket exists: the greeting follows, or the connection drops if QEMU dies. A
    // dead QEMU may leave its socket behind (connect refused), hence the bounded try.
    auto client = qmp::Client::Connect(harness_qmp_path(), std::min(left_ms, 1000));
    if (client.ok()) {
      harness_ = std::move(client.value());
      return Status::Ok();
    }
    last_error = client.status().message();
    SleepMs(kPollMs);
  }
  return Error("QEMU did not answer on its harness QMP socket within " +
               std::to_string(config_.start_timeout_ms) + " ms (" + last_error + "); log:\n" +
               FileTail(log_path()));
}

Status QemuVm::WaitForSerial(const std::string& marker, int timeout_ms) {
  const int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  std::string seen;
  while (true) {
    size_t old_size = seen.size();
    std::ifstream in(serial_path(), std::ios::binary);
    in.seekg(std::streamoff(old_size));
    std::stringstream more;
    more << in.rdbuf();
    seen += more.str();
    size_t from = old_size >= marker.size() ? old_size - marker.size() + 1 : 0;
    if (seen.find(marker, from) != std::string::npos) return Status::Ok();
    if (seen.find("Kernel panic") != std::string::npos) {
      return Error("the guest kernel panicked before \"" + marker +
                   "\" (too little --mem for the image and workload?); serial tail:\n" +
                   FileTail(serial_path()));
    }
    if (stopped_ || HasExited()) {
      return Error("QEMU exited (" + exit_description_ + ") before \"" + marker +
                   "\" on the serial console; serial tail:\n" + FileTail(serial_path()));
    }
    if (MonotonicMicros() >= deadline) {
      return Error("no \"" + marker + "\" on the serial console within " +
                   std::to_string(timeout_ms) + " ms; serial tail:\n" + FileTail(serial_path()));
    }
    SleepMs(50);
  }
}

Result<std::string> QemuVm::QueryStatus() {
  if (!harness_) return Error("not running");
  auto reply = harness_->Execute("query-status");
  if (!reply.ok()) return reply.status();
  auto it = reply->find("status");
  if (it == reply->end() || !it->is_string()) return Error("query-status without status");
  return it->get<std::string>();
}

Status QemuVm::Stop(int timeout_ms) {
  if (stopped_) return Status::Ok();
  const int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  if (harness_ && !HasExited()) {
    (void)harness_->Execute("quit", nlohmann::json::object(), std::max(timeout_ms, 100));
  }
  WaitExit(int(std::max<int64_t>(0, (deadline - MonotonicMicros()) / 1000)));
  if (!HasExited()) {
    kill(pid_, SIGTERM);
    WaitExit(kTermGraceMs);
  }
  if (!HasExited()) {
    kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) exit_description_ = DescribeWaitStatus(status);
    reaped_ = true;
  }
  harness_.reset();
  RemoveFiles();
  stopped_ = true;
  return Status::Ok();
}

bool QemuVm::HasExited() {
  if (pid_ < 0 || reaped_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    reaped_ = true;
    exit_description_ = r == pid_ ? DescribeWaitStatus(status) : "reaped elsewhere";
  }
  return reaped_;
}

void QemuVm::WaitExit(int timeout_ms) {
  const int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  while (!HasExited() && MonotonicMicros() < deadline) SleepMs(kPollMs);
}

void QemuVm::RemoveFiles() {
  RemoveIfExists(qmp_path());
  RemoveIfExists(harness_qmp_path());
  if (!config_.keep_ram_file) RemoveIfExists(ram_path());
  if (config_.incoming && config_.incoming->rfind("unix:", 0) == 0) {
    std::string sock = config_.incoming->substr(5);
    std::error_code ec;
    if (std::filesystem::is_socket(sock, ec)) RemoveIfExists(sock);
  }
}

std::string QemuVm::FilePath(const char* suffix) const {
  return config_.workdir + "/" + config_.name + suffix;
}

Status QemuVm::Error(const std::string& what) const {
  return Status::Error("vm " + config_.name + ": " + what);
}

}  // namespace gangmig::testbed
