// A gang scenario on one machine, shared by `gangmig demo` and the end-to-end tests:
// N source VMs booted from the project's guest image, N paused destination VMs waiting
// for an incoming migration, the same QEMU migration settings on every source, and the
// byte-for-byte RAM check afterwards. It owns every QEMU it starts and every file in its
// work directory.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "migrate/report.h"
#include "testbed/guest_image.h"
#include "testbed/qemu_vm.h"
#include "testbed/ram_compare.h"

namespace gangmig::testbed {

struct ScenarioConfig {
  int vms = 4;
  int mem_mib = 256;
  int workload_mib = 64;          // memory each guest's workload fills
  int dirty_rate = 0;             // pages/s each guest keeps re-dirtying
  bool tcp_destinations = false;  // destinations listen on tcp:127.0.0.1:PORT (direct)
  bool return_path = false;       // migration capability return-path on every source
  int64_t max_bandwidth = 0;      // bytes/s for QEMU's max-bandwidth (0: QEMU's default)
  int first_port = 47000;         // tcp destinations use first_port + i
  int boot_timeout_ms = 180000;
  std::string workdir;  // must exist
  std::string name_prefix = "vm";
  int first_seed = 1;  // VM i's guest seeds its per-VM data with first_seed + i
  std::string extra_append;  // more guest kernel command line (e.g. gangmig.shared_pct=0)
  bool keep_ram_files = false;
  bool paused_destinations = true;            // -S: destinations stay paused after the migration
  std::vector<std::string> source_only_args;  // extra QEMU args for sources only
  // Migration capabilities turned on for every source and destination, e.g. "multifd".
  std::vector<std::string> capabilities;
  int multifd_channels = 0;  // >0: set multifd-channels on both sides
  nlohmann::json parameters =
      nlohmann::json::object();  // more migrate-set-parameters, both sides  // leave <name>.ram
                                 // files when VMs stop (for inspection)
  GuestImage image;
  // When set, every second VM (vm2, vm4, ...) boots this image instead: a
  // heterogeneous gang of two guest flavours.
  std::optional<GuestImage> alt_image;
};

class Scenario {
 public:
  explicit Scenario(ScenarioConfig config) : config_(std::move(config)) {}
  ~Scenario();  // stops every VM still running

  // Starts the destinations (paused, -incoming), boots the sources and waits until every
  // guest's workload is ready, then applies the migration settings to the sources.
  Status Start();
  // What `gangmig migrate --direct` needs for each VM (source qmp, dest, dest-qmp).
  std::vector<migrate::VmSpec> Specs() const;
  // What a gang migration's sender is told: each VM's name and source qmp only.
  std::vector<migrate::VmSpec> GangSpecs() const;
  // Writes the receiver's destination map (receive --dest-map): one line per VM, its
  // destination's -incoming address and QMP socket.
  Status WriteDestMap(const std::string& path) const;
  // Compares each source's RAM file with its destination's. Error text names the VM and
  // the first differing offset.
  Status CheckRamIdentical(std::vector<RamDiff>* diffs = nullptr);
  // Distinct non-zero pages over every source RAM file (a lower bound on what any
  // page-level scheme must send), and with options.compress what they compress to.
  Result<DistinctPages> DistinctNonZeroPages(const DistinctOptions& options = {}) const;
  // After a completed migration, turns the gang around for the way back: each
  // destination is resumed (its guest and workload run on) and becomes a source, each
  // old source is stopped, and a fresh paused destination takes its place (the old
  // source's name with "-back"). Migration settings are applied as in Start().
  Status TurnAround();
  // Stops every VM (and removes their files).
  Status StopAll();

  std::vector<std::unique_ptr<QemuVm>>& sources() { return sources_; }
  std::vector<std::unique_ptr<QemuVm>>& destinations() { return dests_; }

 private:
  VmConfig SourceConfig(int i) const;
  Status ApplyMigrationSettings(QemuVm& vm);
  Status ApplyCapabilities(QemuVm& vm);

  ScenarioConfig config_;
  std::vector<std::unique_ptr<QemuVm>> sources_, dests_;
};

}  // namespace gangmig::testbed
