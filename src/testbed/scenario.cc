// Destinations are started first (they only listen), then all sources at once; guests
// boot in parallel under TCG. Both sides of each pair get the same VmConfig apart from
// name/incoming/-S (DestinationConfig), since QEMU insists on identical RAM block sizes.
#include "testbed/scenario.h"

#include <fstream>

#include "testbed/ram_compare.h"

namespace gangmig::testbed {

Scenario::~Scenario() { (void)StopAll(); }

VmConfig Scenario::SourceConfig(int i) const {
  VmConfig c;
  c.name = config_.name_prefix + std::to_string(i + 1);
  c.workdir = config_.workdir;
  c.mem_mib = config_.mem_mib;
  c.UseImage(config_.alt_image && i % 2 == 1 ? *config_.alt_image : config_.image);
  c.seed = config_.first_seed + i;
  c.workload_mib = config_.workload_mib;
  c.dirty_rate = config_.dirty_rate;
  c.extra_append = config_.extra_append;
  c.keep_ram_file = config_.keep_ram_files;
  c.kill_with_parent = true;  // Start() runs on the caller's main thread
  c.start_timeout_ms = 30000;
  return c;
}

Status Scenario::Start() {
  for (int i = 0; i < config_.vms; ++i) {
    VmConfig src = SourceConfig(i);
    std::string incoming = config_.tcp_destinations
                               ? "tcp:127.0.0.1:" + std::to_string(config_.first_port + i)
                               : "unix:" + config_.workdir + "/" + src.name + ".incoming";
    VmConfig dst = DestinationConfig(src, src.name + "-dst", incoming);
    dst.start_paused = config_.paused_destinations;
    dests_.push_back(std::make_unique<QemuVm>(dst));
    GANGMIG_RETURN_IF_ERROR(dests_.back()->Start());
    GANGMIG_RETURN_IF_ERROR(ApplyCapabilities(*dests_.back()));
  }
  for (int i = 0; i < config_.vms; ++i) {
    VmConfig src = SourceConfig(i);
    src.extra_args.insert(src.extra_args.end(), config_.source_only_args.begin(),
                          config_.source_only_args.end());
    sources_.push_back(std::make_unique<QemuVm>(src));
    GANGMIG_RETURN_IF_ERROR(sources_.back()->Start());
  }
  for (auto& vm : sources_) {
    Status st = vm->WaitForSerial(kGuestReadyMarker, config_.boot_timeout_ms);
    if (!st.ok()) return st.WithContext("guest " + vm->config().name + " did not boot");
    GANGMIG_RETURN_IF_ERROR(ApplyMigrationSettings(*vm));
  }
  return Status::Ok();
}

Status Scenario::TurnAround() {
  for (size_t i = 0; i < dests_.size(); ++i) {
    QemuVm& back = *dests_[i];
    auto cont = back.harness().Execute("cont");
    if (!cont.ok()) return cont.status().WithContext("resuming " + back.config().name);
    GANGMIG_RETURN_IF_ERROR(sources_[i]->Stop());
    VmConfig src = SourceConfig(int(i));
    std::string name = src.name + "-back";
    std::string incoming =
        config_.tcp_destinations
            ? "tcp:127.0.0.1:" + std::to_string(config_.first_port + config_.vms + int(i))
            : "unix:" + config_.workdir + "/" + name + ".incoming";
    VmConfig dst = DestinationConfig(src, name, incoming);
    dst.start_paused = config_.paused_destinations;
    auto fresh = std::make_unique<QemuVm>(dst);
    GANGMIG_RETURN_IF_ERROR(fresh->Start());
    GANGMIG_RETURN_IF_ERROR(ApplyCapabilities(*fresh));
    GANGMIG_RETURN_IF_ERROR(ApplyMigrationSettings(back));
    sources_[i] = std::move(dests_[i]);
    dests_[i] = std::move(fresh);
  }
  return Status::Ok();
}

Status Scenario::ApplyCapabilities(QemuVm& vm) {
  nlohmann::json caps = nlohmann::json::array();
  for (const std::string& c : config_.capabilities)
    caps.push_back({{"capability", c}, {"state", true}});
  if (!caps.empty()) {
    auto r = vm.harness().Execute("migrate-set-capabilities", {{"capabilities", caps}});
    if (!r.ok()) return r.status();
  }
  nlohmann::json params = config_.parameters;
  if (config_.multifd_channels > 0) params["multifd-channels"] = config_.multifd_channels;
  if (!params.empty()) {
    auto r = vm.harness().Execute("migrate-set-parameters", params);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status Scenario::ApplyMigrationSettings(QemuVm& vm) {
  GANGMIG_RETURN_IF_ERROR(ApplyCapabilities(vm));
  if (config_.return_path) {
    nlohmann::json caps = {{"capabilities", {{{"capability", "return-path"}, {"state", true}}}}};
    auto r = vm.harness().Execute("migrate-set-capabilities", caps);
    if (!r.ok()) return r.status();
  }
  if (config_.max_bandwidth > 0) {
    auto r =
        vm.harness().Execute("migrate-set-parameters", {{"max-bandwidth", config_.max_bandwidth}});
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

std::vector<migrate::VmSpec> Scenario::Specs() const {
  std::vector<migrate::VmSpec> specs;
  for (size_t i = 0; i < sources_.size(); ++i) {
    migrate::VmSpec s;
    s.name = sources_[i]->config().name;
    s.qmp = sources_[i]->qmp_path();
    s.dest = *dests_[i]->config().incoming;
    s.dest_qmp = dests_[i]->qmp_path();
    specs.push_back(s);
  }
  return specs;
}

std::vector<migrate::VmSpec> Scenario::GangSpecs() const {
  std::vector<migrate::VmSpec> specs = Specs();
  for (auto& s : specs) s.dest = s.dest_qmp = "";
  return specs;
}

Status Scenario::WriteDestMap(const std::string& path) const {
  std::ofstream out(path);
  out << "# NAME ADDRESS QMP-SOCKET (written by the testbed)\n";
  for (const migrate::VmSpec& s : Specs()) out << s.name << " " << s.dest << " " << s.dest_qmp << "\n";
  out.close();
  if (!out) return Status::Error("cannot write " + path);
  return Status::Ok();
}

Status Scenario::CheckRamIdentical(std::vector<RamDiff>* diffs) {
  std::string bad;
  for (size_t i = 0; i < sources_.size(); ++i) {
    auto d = CompareRamFiles(sources_[i]->ram_path(), dests_[i]->ram_path());
    if (!d.ok()) return d.status().WithContext("vm " + sources_[i]->config().name);
    if (diffs) diffs->push_back(*d);
    if (d->differing_pages != 0) {
      char buf[160];
      snprintf(buf, sizeof(buf), "%s: %llu pages differ (first at offset 0x%llx)",
               sources_[i]->config().name.c_str(), (unsigned long long)d->differing_pages,
               (unsigned long long)d->first_diff_offset);
      bad += (bad.empty() ? "" : "; ") + std::string(buf);
    }
  }
  if (!bad.empty()) return Status::Error("RAM differs: " + bad);
  return Status::Ok();
}

Result<DistinctPages> Scenario::DistinctNonZeroPages(const DistinctOptions& options) const {
  std::vector<std::string> files;
  for (auto& vm : sources_) files.push_back(vm->ram_path());
  return MeasureDistinctNonZeroPages(files, options);
}

Status Scenario::StopAll() {
  Status first;
  for (auto* list : {&sources_, &dests_}) {
    for (auto& vm : *list) {
      Status st = vm->Stop();
      if (!st.ok() && first.ok()) first = st;
    }
    list->clear();
  }
  return first;
}

}  // namespace gangmig::testbed
