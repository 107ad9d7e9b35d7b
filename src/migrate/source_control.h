// SourceControl: how one source VM's migration is started, watched and rolled back. The
// sender's data path sees only byte streams on a unix socket and what this reports
// (stopped, completed, failed); who drives the source is behind this seam:
//   - QmpSourceControl: gangmig owns the VM's QMP socket (migrate --vm name=,qmp=);
//   - LibvirtSourceControl: libvirt owns the monitor, gangmig starts its migration;
//   - StreamSourceControl: a stream that simply connected (gangmig proxy): whoever
//     started it (libvirt under an orchestrator) watches it and rolls it back.
// Every call may block on the VM's control channel except Snapshot() and StopUs(), which
// the data thread uses; RollBack runs on a thread of its own.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "base/status.h"
#include "migrate/vm_monitor.h"
#include "net/socket.h"

namespace gangmig::migrate {

// What a rollback did, for the VM's report.
struct RollbackOutcome {
  std::string outcome;      // appended to the VM's error ("; source VM kept running")
  std::string final_state;  // the source's run state afterwards ("" if unknown)
};

class SourceControl {
 public:
  virtual ~SourceControl() = default;
  // Checks that the VM can be migrated now (running or paused, no migration under way)
  // and starts watching it. Errors name what is wrong.
  virtual Status Prepare() = 0;
  // Starts the migration into the unix socket at `path` (gangmig listens there).
  virtual Status Start(const std::string& path) = 0;
  // The latest known state; cheap, never blocks.
  virtual VmSnapshot Snapshot() const = 0;
  // When the source stopped the VM for switchover (0: not yet); cheaper than Snapshot.
  virtual int64_t StopUs() const = 0;
  // Makes sure the source keeps running after a failure. `fds` are the VM's migration
  // sockets, closed first (a source blocked writing into them is freed by that).
  virtual RollbackOutcome RollBack(std::vector<net::Fd> fds) = 0;
};

// The source's QMP socket, used by gangmig alone (QMP serves one client at a time).
class QmpSourceControl : public SourceControl {
 public:
  explicit QmpSourceControl(std::string qmp_path) : qmp_path_(std::move(qmp_path)) {}
  Status Prepare() override;
  Status Start(const std::string& path) override;
  VmSnapshot Snapshot() const override { return monitor_->Snapshot(); }
  int64_t StopUs() const override { return monitor_->StopUs(); }
  RollbackOutcome RollBack(std::vector<net::Fd> fds) override;

 private:
  std::string qmp_path_;
  std::string was_status_;  // run state before the migration
  std::unique_ptr<VmMonitor> monitor_;
};

// A libvirt domain: libvirt owns its monitor, so gangmig asks libvirt to migrate it
// (`virsh migrate --live --p2p` with gangmig's socket as the migration URI, which the
// destination libvirt also listens on, on its host) and lets libvirt roll it back.
struct LibvirtTarget {
  std::string source_uri;  // e.g. qemu:///system
  std::string dest_uri;    // e.g. qemu+ssh://dest/system (libvirt connects to it: --p2p)
  std::vector<std::string> extra_args;  // more `virsh migrate` flags (--persistent, ...)
  // --copy-storage-all/-inc among them: the disk copy (NBD) goes through a socket of its
  // own beside the stream's, DIR/DOMAIN.disks.sock (`virsh migrate --disks-uri`).
  bool copy_storage = false;
};

// The disk copy's socket beside a stream's socket DIR/NAME.sock: DIR/NAME.disks.sock.
std::string DisksSocketPath(const std::string& stream_path);

class LibvirtSourceControl : public SourceControl {
 public:
  LibvirtSourceControl(std::string domain, LibvirtTarget target)
      : domain_(std::move(domain)), target_(std::move(target)) {}
  ~LibvirtSourceControl() override;
  Status Prepare() override;
  Status Start(const std::string& path) override;
  VmSnapshot Snapshot() const override;
  int64_t StopUs() const override { return 0; }  // the stream's RAM END tells instead
  RollbackOutcome RollBack(std::vector<net::Fd> fds) override;

 private:
  void Watch(pid_t pid, int out_fd);

  std::string domain_;
  LibvirtTarget target_;
  std::string was_state_;
  mutable std::mutex mu_;
  VmSnapshot snap_;
  std::thread watcher_;
  std::atomic<bool> exited_{false};
};

// A stream that connected by itself (gangmig proxy): gangmig neither starts nor watches
// the source. What it knows comes from the stream: the source stopped when its RAM END
// section began, and its part is done when it closed the main channel. A rollback is
// closing the sockets; the source QEMU then fails its migration and the manager that
// started it (libvirt) keeps the VM running on the source.
class StreamSourceControl : public SourceControl {
 public:
  Status Prepare() override { return Status::Ok(); }
  Status Start(const std::string&) override { return Status::Ok(); }
  VmSnapshot Snapshot() const override { return {}; }
  int64_t StopUs() const override { return 0; }
  RollbackOutcome RollBack(std::vector<net::Fd> fds) override {
    fds.clear();
    return {"; its migration connection was closed, so the source QEMU fails the migration "
            "and the VM's manager (libvirt) keeps it on the source",
            ""};
  }
};

// Runs `argv` (virsh), waits at most timeout_ms; its exit status and what it printed
// (stdout and stderr together). Errors: it could not be started, or timed out.
struct CommandResult {
  int exit_status = -1;
  std::string output;
};
Result<CommandResult> RunCommand(const std::vector<std::string>& argv, int timeout_ms);

}  // namespace gangmig::migrate
