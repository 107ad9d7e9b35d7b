#include "migrate/source_control.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/clock.h"
#include "migrate/timeouts.h"
#include "qmp/qmp_client.h"

namespace gangmig::migrate {

using nlohmann::json;

Status QmpSourceControl::Prepare() {
  auto client = qmp::Client::Connect(qmp_path_, timeouts::kQmpMs);
  if (!client.ok()) return client.status();
  auto st = (*client)->Execute("query-status");
  if (!st.ok()) return st.status();
  was_status_ = st->value("status", "");
  if (was_status_ != "running" && was_status_ != "paused")
    return Status::Error("source is '" + was_status_ + "', expected running or paused");
  auto mig = (*client)->Execute("query-migrate");
  std::string ms = mig.ok() ? mig->value("status", "") : "";
  if (ms == "active" || ms == "setup" || ms == "device" || ms == "pre-switchover")
    return Status::Error("a migration is already running (" + ms + ")");
  monitor_ = std::make_unique<VmMonitor>(std::move(client).value(), 100);
  monitor_->EnableMigrationEvents();  // QEMU's own "completed" timestamp, for reports
  return Status::Ok();
}

Status QmpSourceControl::Start(const std::string& path) {
  auto r = monitor_->Execute("migrate", {{"uri", "unix:" + path}});
  return r.ok() ? Status::Ok() : r.status();
}

// A source whose QMP does not answer: its stream is closed, so once QEMU runs again it
// fails the migration and runs on (or stays paused, as it was); only QEMU can say which.
namespace {
RollbackOutcome Unanswered(RollbackOutcome out) {
  out.outcome = "; the source QEMU still does not answer QMP (its migration stream is "
                "closed): check that VM";
  out.final_state = "unknown";
  return out;
}
}  // namespace

// Close QEMU's sockets first (QEMU sees the stream break: a QEMU blocked writing its last
// round into a full socket, the lock that its monitor needs held, is freed by that), then
// migrate_cancel, wait for QEMU to leave the migration, and `cont` a source that was
// running and is not any more. A monitor whose connection broke is reconnected once; one
// that still does not answer (a hung QEMU) is reported as such.
RollbackOutcome QmpSourceControl::RollBack(std::vector<net::Fd> fds) {
  RollbackOutcome out;
  fds.clear();
  if (!monitor_) return out;
  VmSnapshot s = monitor_->Snapshot();
  if (s.qmp_lost) {
    Status again = monitor_->Reconnect(timeouts::kQmpMs);
    if (!again.ok()) {
      out.outcome = "; cannot reach the source QMP to check it (" + again.message() + ")";
      return out;
    }
    monitor_->WaitForFreshSnapshot(timeouts::kQmpMs);
  } else if (s.qmp_unanswered_since_us != 0) {
    // A QEMU blocked writing into its closed stream answers now; a hung one does not.
    monitor_->WaitForFreshSnapshot(timeouts::kQmpMs);
  }
  s = monitor_->Snapshot();
  if (s.qmp_unanswered_since_us != 0) return Unanswered(out);
  (void)monitor_->Execute("migrate_cancel", json::object(), timeouts::kQmpMs);
  int64_t deadline = MonotonicMicros() + timeouts::kCancelSettleMs * 1000LL;
  while (MonotonicMicros() < deadline) {
    monitor_->WaitForFreshSnapshot(1000);
    s = monitor_->Snapshot();
    const std::string& ms = s.migration_status;
    if (ms != "active" && ms != "setup" && ms != "cancelling" && ms != "device" &&
        ms != "pre-switchover")
      break;
  }
  if (s.qmp_unanswered_since_us != 0) return Unanswered(out);
  if (was_status_ == "running" && s.run_status != "running") {
    auto r = monitor_->Execute("cont", json::object(), timeouts::kQmpMs);
    out.outcome = r.ok() ? "; source VM resumed with 'cont'"
                         : "; 'cont' on the source failed: " + r.status().message();
    monitor_->WaitForFreshSnapshot(1000);
    s = monitor_->Snapshot();
  } else {
    out.outcome = "; source VM kept running";
  }
  out.final_state = s.run_status;
  return out;
}

}  // namespace gangmig::migrate

namespace gangmig::migrate {
namespace {

// virsh prints one value per line; the first line, trimmed.
std::string FirstLine(const std::string& text) {
  size_t end = text.find('\n');
  std::string line = text.substr(0, end);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

// What follows "Key:" in virsh's "Key:   value" listing, trimmed ("" if absent).
std::string Field(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::string v = line.substr(key.size() + 1);
    size_t b = v.find_first_not_of(' '), e = v.find_last_not_of(" \r");
    return b == std::string::npos ? "" : v.substr(b, e - b + 1);
  }
  return "";
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// Forks and execs argv with stdout and stderr into a pipe; returns the pid and the
// pipe's read end.
Result<std::pair<pid_t, int>> Spawn(const std::vector<std::string>& argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Status::Error(std::string("pipe: ") + strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return Status::Error(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    dprintf(2, "cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  return std::make_pair(pid, p[0]);
}

// Reads `fd` to its end (or the deadline), then reaps `pid` (killing it past the deadline).
CommandResult Collect(pid_t pid, int fd, int64_t deadline_us) {
  CommandResult r;
  char buf[4096];
  for (;;) {
    int64_t left = deadline_us - MonotonicMicros();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(std::min<int64_t>(left / 1000 + 1, 1000))) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    if (r.output.size() < (64u << 10)) r.output.append(buf, size_t(n));
  }
  close(fd);
  int status = 0;
  // Its output ended: it is exiting (or it closed its output and hangs: the deadline).
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (MonotonicMicros() >= deadline_us) {
      kill(pid, SIGKILL);  // our own child, past its deadline
      waitpid(pid, &status, 0);
      r.output += "\n(killed: no answer in time)";
      return r;
    }
    usleep(2000);
  }
  r.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, int timeout_ms) {
  auto spawned = Spawn(argv);
  if (!spawned.ok()) return spawned.status();
  return Collect(spawned->first, spawned->second, MonotonicMicros() + timeout_ms * 1000LL);
}

std::string DisksSocketPath(const std::string& stream_path) {
  std::string base = stream_path;
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".sock") == 0) base.resize(base.size() - 5);
  return base + ".disks.sock";
}

LibvirtSourceControl::~LibvirtSourceControl() {
  if (watcher_.joinable()) watcher_.join();
}

Status LibvirtSourceControl::Prepare() {
  auto state = RunCommand({"virsh", "-q", "-c", target_.source_uri, "domstate", domain_},
                          timeouts::kQmpMs);
  if (!state.ok()) return state.status().WithContext("virsh");
  if (state->exit_status != 0)
    return Status::Error("libvirt: " + Trimmed(state->output) + " (virsh -c " +
                         target_.source_uri + " domstate " + domain_ + ")");
  was_state_ = FirstLine(state->output);
  if (was_state_ != "running" && was_state_ != "paused")
    return Status::Error("domain is '" + was_state_ + "', expected running or paused");
  auto job = RunCommand({"virsh", "-c", target_.source_uri, "domjobinfo", domain_},
                        timeouts::kQmpMs);
  if (job.ok() && job->exit_status == 0) {
    std::string type = Field(job->output, "Job type");
    if (!type.empty() && type != "None")
      return Status::Error("libvirt already runs a job on it (" + type + ")");
  }
  std::lock_guard<std::mutex> lock(mu_);
  snap_.run_status = was_state_;
  return Status::Ok();
}

Status LibvirtSourceControl::Start(const std::string& path) {
  std::vector<std::string> argv = {"virsh", "-c", target_.source_uri, "migrate", "--live", "--p2p"};
  argv.insert(argv.end(), target_.extra_args.begin(), target_.extra_args.end());
  argv.insert(argv.end(), {domain_, target_.dest_uri, "--migrateuri", "unix://" + path});
  if (target_.copy_storage) argv.insert(argv.end(), {"--disks-uri", "unix://" + DisksSocketPath(path)});
  auto spawned = Spawn(argv);
  if (!spawned.ok()) return spawned.status().WithContext("virsh migrate");
  {
    std::lock_guard<std::mutex> lock(mu_);
    snap_.migration_status = "active";
  }
  watcher_ = std::thread([this, pid = spawned->first, fd = spawned->second] { Watch(pid, fd); });
  return Status::Ok();
}

// Waits for `virsh migrate`; its exit status is the migration's outcome. On success the
// destination's job statistics give libvirt's own downtime figure.
void LibvirtSourceControl::Watch(pid_t pid, int out_fd) {
  CommandResult r = Collect(pid, out_fd, MonotonicMicros() + 7LL * 24 * 3600 * 1000000);
  VmSnapshot s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = snap_;
  }
  if (r.exit_status == 0) {
    s.migration_status = "completed";
    s.completed_us = WallMicros();
    // --keep-completed: libvirt otherwise drops the statistics once read, and the
    // operator (or the orchestrator) could no longer see them.
    auto info = RunCommand({"virsh", "-c", target_.dest_uri, "domjobinfo", domain_, "--completed",
                            "--keep-completed"},
                           timeouts::kQmpMs);
    if (info.ok() && info->exit_status == 0) {
      std::string d = Field(info->output, "Total downtime");
      if (!d.empty()) s.manager_downtime_ms = std::atof(d.c_str());
    }
    auto state = RunCommand({"virsh", "-q", "-c", target_.source_uri, "domstate", domain_},
                            timeouts::kQmpMs);
    s.run_status = state.ok() && state->exit_status == 0 ? FirstLine(state->output) : "";
  } else {
    s.migration_status = "failed";
    s.migration["error-desc"] = "virsh migrate: " + Trimmed(r.output);
  }
  std::lock_guard<std::mutex> lock(mu_);
  snap_ = s;
  exited_ = true;
}

VmSnapshot LibvirtSourceControl::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snap_;
}

// libvirt rolls a failed migration back itself once its connection breaks: close the
// sockets, let `virsh migrate` end (abort the job if it does not), then make sure the
// domain runs where it was.
RollbackOutcome LibvirtSourceControl::RollBack(std::vector<net::Fd> fds) {
  RollbackOutcome out;
  fds.clear();
  auto wait_exit = [this](int ms) {
    for (int i = 0; i < ms / 50 && !exited_ && watcher_.joinable(); ++i) usleep(50000);
  };
  wait_exit(timeouts::kCancelSettleMs);
  if (watcher_.joinable() && !exited_) {
    (void)RunCommand({"virsh", "-c", target_.source_uri, "domjobabort", domain_}, timeouts::kQmpMs);
    wait_exit(timeouts::kCancelSettleMs);
  }
  auto state = RunCommand({"virsh", "-q", "-c", target_.source_uri, "domstate", domain_},
                          timeouts::kQmpMs);
  if (!state.ok() || state->exit_status != 0) {
    out.outcome = "; cannot ask libvirt for the domain's state (" +
                  (state.ok() ? Trimmed(state->output) : state.status().message()) + ")";
    return out;
  }
  std::string now = FirstLine(state->output);
  if (was_state_ == "running" && now == "paused") {
    auto r = RunCommand({"virsh", "-c", target_.source_uri, "resume", domain_}, timeouts::kQmpMs);
    bool ok = r.ok() && r->exit_status == 0;
    out.outcome = ok ? "; domain resumed with 'virsh resume'"
                     : "; 'virsh resume' failed: " + (r.ok() ? Trimmed(r->output) : r.status().message());
    now = ok ? "running" : now;
  } else {
    out.outcome = "; domain kept " + now + " on the source (libvirt rolled it back)";
  }
  out.final_state = now;
  return out;
}

}  // namespace gangmig::migrate
