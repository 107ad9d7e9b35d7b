// QemuVm: one QEMU process started and stopped by the testbed (`gangmig demo` and the
// end-to-end tests). It owns the process (by pid: it never signals anything else), the
// files under <workdir>/<name>.* and a "harness" QMP connection. QEMU gets two QMP
// sockets because a monitor serves one client at a time: qmp_path() is for gangmig,
// harness_qmp_path() is the testbed's own.
//
// Guest RAM lives in a file (<workdir>/<name>.ram, memory-backend-file share=on) so that
// tests can compare the RAM of a source and a destination byte for byte.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "qmp/qmp_client.h"
#include "testbed/guest_image.h"

namespace gangmig::testbed {

struct VmConfig {
  std::string name;     // -name, and the stem of every file under workdir
  std::string workdir;  // created if missing
  int mem_mib = 256;
  // Adds 8 KiB to the RAM size (-m <mem_mib*1024+8>K). QEMU 7.2 under TCG loses guest
  // writes during precopy when the RAM block is a multiple of 256 KiB; see qemu_vm.cc.
  bool work_around_tcg_dirty_bug = true;
  std::string kernel;  // empty: firmware only, no -kernel/-initrd/-append
  std::string initrd;
  int seed = 1;                         // gangmig.seed=
  int workload_mib = 64;                // gangmig.mem_mib=
  int dirty_rate = 0;                   // gangmig.dirty_rate= (pages per second)
  std::string extra_append;             // appended to the kernel command line
  std::optional<std::string> incoming;  // "unix:/path" or "tcp:127.0.0.1:4444": a destination
  bool start_paused = false;            // -S
  std::vector<std::string> extra_args;  // appended to the QEMU command line
  std::string qemu_binary = "qemu-system-x86_64";
  bool keep_ram_file = false;  // Stop() leaves <workdir>/<name>.ram in place
  int start_timeout_ms = 10000;
  // QEMU gets SIGKILL when the *thread* that called Start() exits (PR_SET_PDEATHSIG), so
  // a crashed test leaves no QEMU behind. Turn off when starting VMs from short-lived threads.
  bool kill_with_parent = true;

  // Sets kernel and initrd from `image`.
  void UseImage(const GuestImage& image);
};

// The config of a destination for `source`: identical (QEMU needs the same kernel,
// initrd and command line, hence the same ROM sizes) apart from name, incoming and -S.
VmConfig DestinationConfig(const VmConfig& source, const std::string& name,
                           const std::string& incoming);

// Guest RAM in bytes: the size of the RAM file and of QEMU's "ram0" block.
uint64_t RamBytes(const VmConfig& config);

// "console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check gangmig.seed=..
// gangmig.mem_mib=.. gangmig.dirty_rate=.." followed by extra_append.
std::string KernelCommandLine(const VmConfig& config);

// The full QEMU argv (argv[0] is qemu_binary). Pure.
std::vector<std::string> QemuArgv(const VmConfig& config);

class QemuVm {
 public:
  explicit QemuVm(VmConfig config);
  // Stops QEMU if it is still running (see Stop()).
  ~QemuVm();
  QemuVm(const QemuVm&) = delete;
  QemuVm& operator=(const QemuVm&) = delete;

  // Forks and execs QEMU (stdout/stderr to log_path()), then waits until the harness QMP
  // socket answers and keeps that connection. An early exit gives an error with the log tail.
  Status Start();
  // Waits until `marker` appears in the serial console file. Errors on timeout or when
  // QEMU exits first, with the serial tail.
  Status WaitForSerial(const std::string& marker, int timeout_ms);
  // query-status "status" via the harness: "running", "paused", "prelaunch",
  // "inmigrate", "postmigrate", "finish-migrate", "shutdown", ...
  Result<std::string> QueryStatus();
  // quit over QMP; after timeout_ms SIGTERM, then SIGKILL, of our pid only; reaps it and
  // removes the socket files (and the RAM file unless keep_ram_file). OK when not running.
  Status Stop(int timeout_ms = 5000);
  // True once QEMU has exited (reaps it without blocking).
  bool HasExited();

  // REQUIRES: Start() succeeded and Stop() has not run.
  qmp::Client& harness() { return *harness_; }
  pid_t pid() const { return pid_; }  // -1 before Start()
  const VmConfig& config() const { return config_; }
  std::string qmp_path() const { return FilePath(".qmp"); }  // for gangmig
  std::string harness_qmp_path() const { return FilePath(".harness.qmp"); }
  std::string ram_path() const { return FilePath(".ram"); }
  std::string serial_path() const { return FilePath(".serial"); }
  std::string log_path() const { return FilePath(".log"); }
  // How QEMU ended ("exit code 0", "signal 9"), or "" while it runs.
  const std::string& exit_description() const { return exit_description_; }

 private:
  std::string FilePath(const char* suffix) const;
  Status CheckConfig() const;
  Status Spawn();
  Status ConnectHarness();
  void WaitExit(int timeout_ms);
  void RemoveFiles();
  Status Error(const std::string& what) const;

  VmConfig config_;
  pid_t pid_ = -1;
  bool reaped_ = false;  // waitpid() returned pid_: it may be reused, never signal it
  bool stopped_ = true;  // no process and files cleaned up
  std::string exit_description_;
  std::unique_ptr<qmp::Client> harness_;
};

}  // namespace gangmig::testbed
