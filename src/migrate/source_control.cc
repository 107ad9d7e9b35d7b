#include "migrate/source_control.h"

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

// Close QEMU's sockets first (QEMU sees the stream break: a QEMU blocked writing its last
// round into a full socket, the lock that its monitor needs held, is freed by that), then
// migrate_cancel, wait for QEMU to leave the migration, and `cont` a source that was
// running and is not any more. A monitor that stopped answering is reconnected once.
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
  }
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
