// Direct mode drives only QMP: `migrate uri=<dest>` on every source, then watches both
// ends with the same VmMonitor used by the gang path, so timings are measured the same
// way (QMP event timestamps). On failure it cancels and resumes sources like the gang
// sender does.
#include "migrate/direct.h"

#include <memory>
#include <thread>

#include "base/clock.h"
#include "migrate/progress.h"
#include "migrate/timeouts.h"
#include "migrate/vm_monitor.h"

namespace gangmig::migrate {
namespace {

using nlohmann::json;

struct DirectVm {
  std::unique_ptr<VmMonitor> src, dst;
  std::string was_status;
  bool finished = false;
};

bool Active(const std::string& s) {
  return s == "setup" || s == "active" || s == "device" || s == "pre-switchover" ||
         s == "cancelling";
}

void Recover(DirectVm& vm, VmReport& rep) {
  (void)vm.src->Execute("migrate_cancel", json::object(), timeouts::kQmpMs);
  for (int i = 0; i < 100 && Active(vm.src->Snapshot().migration_status); ++i)
    vm.src->WaitForFreshSnapshot(1000);
  VmSnapshot s = vm.src->Snapshot();
  if (vm.was_status == "running" && s.run_status != "running") {
    auto r = vm.src->Execute("cont", json::object(), timeouts::kQmpMs);
    rep.error += r.ok() ? "; source VM resumed with 'cont'" : "; 'cont' failed";
  } else {
    rep.error += "; source VM kept running";
  }
  vm.src->WaitForFreshSnapshot(1000);
  rep.source_final_state = vm.src->Snapshot().run_status;
}

// Updates one VM from its monitors; returns true when it is finished.
bool Check(DirectVm& vm, VmReport& rep) {
  VmSnapshot s = vm.src->Snapshot();
  if (s.stop_us) rep.stop_us = s.stop_us;
  if (s.migration.contains("ram")) {
    const json& ram = s.migration["ram"];
    rep.stream_bytes = ram.value("transferred", uint64_t(0));
    rep.link_bytes = rep.stream_bytes;
    rep.pages_sent = ram.value("normal", uint64_t(0));
    rep.zero_pages = ram.value("duplicate", uint64_t(0));
  }
  if (s.qmp_lost || s.migration_status == "failed" || s.migration_status == "cancelled") {
    rep.status = "failed";
    rep.phase = "failed";
    rep.error = s.qmp_lost ? "lost the source QMP connection"
                           : "source QEMU reports migration " + s.migration_status + ": " +
                                 s.migration.value("error-desc", std::string());
    return true;
  }
  if (s.migration_status != "completed") return false;
  rep.phase = "finishing";
  if (vm.dst) {
    VmSnapshot d = vm.dst->Snapshot();
    if (d.migration_status == "failed" || d.qmp_lost) {
      rep.status = "failed";
      rep.error = "destination failed to load the stream";
      return true;
    }
    if (d.migration_status != "completed") return false;
    rep.dest_loaded_us = d.completed_us ? d.completed_us : WallMicros();
    if (d.run_status == "running") rep.dest_resume_us = d.resume_us;
  } else {
    rep.dest_loaded_us = WallMicros();
  }
  rep.end_us = rep.dest_resume_us ? rep.dest_resume_us : rep.dest_loaded_us;
  rep.status = "completed";
  rep.phase = "done";
  rep.source_final_state = s.run_status;
  return true;
}

Status Prepare(const SenderOptions& opt, std::vector<DirectVm>* vms) {
  for (const VmSpec& spec : opt.vms) {
    DirectVm vm;
    auto c = qmp::Client::Connect(spec.qmp, timeouts::kQmpMs);
    if (!c.ok()) return c.status().WithContext("vm " + spec.name);
    auto st = (*c)->Execute("query-status");
    if (!st.ok()) return st.status().WithContext("vm " + spec.name);
    vm.was_status = st->value("status", "");
    vm.src = std::make_unique<VmMonitor>(std::move(c).value(), 100);
    if (!spec.dest_qmp.empty()) {
      auto d = qmp::Client::Connect(spec.dest_qmp, timeouts::kQmpMs);
      if (!d.ok()) return d.status().WithContext("vm " + spec.name + " destination");
      vm.dst = std::make_unique<VmMonitor>(std::move(d).value(), 100);
      vm.dst->EnableMigrationEvents();
    }
    vms->push_back(std::move(vm));
  }
  return Status::Ok();
}

}  // namespace

Status RunDirectMigration(const SenderOptions& opt, Report* report) {
  InstallInterruptHandler();
  report->mode = "direct";
  report->start_us = WallMicros();
  double cpu_start = ProcessCpuSeconds();
  for (const VmSpec& s : opt.vms) report->vms.push_back(MakeVmReport(s.name));
  std::vector<DirectVm> vms;
  Status st = Prepare(opt, &vms);
  for (size_t i = 0; st.ok() && i < vms.size(); ++i) {
    report->vms[i].start_us = WallMicros();
    auto r = vms[i].src->Execute("migrate", {{"uri", opt.vms[i].dest}});
    if (!r.ok()) st = r.status().WithContext("vm " + opt.vms[i].name);
    report->vms[i].phase = "streaming";
  }
  Progress progress(stderr, opt.progress);
  int64_t deadline = MonotonicMicros() + int64_t(opt.timeout_s) * 1000000;
  while (st.ok()) {
    bool all = true;
    for (size_t i = 0; i < vms.size(); ++i) {
      if (!vms[i].finished) vms[i].finished = Check(vms[i], report->vms[i]);
      all = all && vms[i].finished;
    }
    progress.Update(report->vms, report->start_us);
    if (all) break;
    if (MonotonicMicros() > deadline) st = Status::Error("timed out");
    if (Interrupted()) st = Status::Error("interrupted by a signal");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string failed;
  for (size_t i = 0; i < report->vms.size(); ++i) {
    VmReport& rep = report->vms[i];
    if (rep.status == "completed") continue;
    if (rep.error.empty()) rep.error = st.ok() ? "failed" : st.message();
    rep.status = "failed";
    if (i < vms.size()) Recover(vms[i], rep);
    failed += (failed.empty() ? "" : "; ") + rep.name + ": " + rep.error;
  }
  progress.Update(report->vms, report->start_us, true);
  report->end_us = WallMicros();
  report->cpu_seconds = ProcessCpuSeconds() - cpu_start;
  report->peak_rss_kib = PeakRssKib();
  if (!failed.empty()) {
    report->error = failed;
    return Status::Error(failed);
  }
  return Status::Ok();
}

}  // namespace gangmig::migrate
