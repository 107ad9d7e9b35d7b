// The monitor thread alternates between draining QMP events (cheap, non-blocking) and a
// query round (query-status + query-migrate) every poll interval. A round QEMU does not
// answer in time is noted (qmp_unanswered_since_us) and retried; only a broken connection
// is qmp_lost. Snapshots are copied
// out under a mutex; the client itself is guarded by a second mutex so that Execute()
// from another thread slots in between rounds.
#include "migrate/vm_monitor.h"

#include <poll.h>

#include <chrono>

#include "base/clock.h"

namespace gangmig::migrate {

VmMonitor::VmMonitor(std::unique_ptr<qmp::Client> client, int poll_ms, int reply_ms)
    : client_(std::move(client)), path_(client_->path()), poll_ms_(poll_ms), reply_ms_(reply_ms) {
  thread_ = std::thread([this] { Loop(); });
}

VmMonitor::~VmMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

VmSnapshot VmMonitor::Snapshot() const {
  std::lock_guard<std::mutex> l(snap_mu_);
  return snap_;
}

Result<nlohmann::json> VmMonitor::Execute(const std::string& command, const nlohmann::json& args,
                                          int timeout_ms) {
  std::lock_guard<std::mutex> l(client_mu_);
  auto r = client_->Execute(command, args, timeout_ms);
  TakeEvents();
  return r;
}

Status VmMonitor::Reconnect(int timeout_ms) {
  if (!Snapshot().qmp_lost) return Status::Ok();
  if (thread_.joinable()) thread_.join();  // it returns once qmp_lost is set
  {
    std::lock_guard<std::mutex> l(client_mu_);
    client_.reset();
    auto c = qmp::Client::Connect(path_, timeout_ms);
    if (!c.ok()) return c.status();
    client_ = std::move(c).value();
  }
  {
    std::lock_guard<std::mutex> l(snap_mu_);
    snap_.qmp_lost = false;
    snap_.qmp_error.clear();
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void VmMonitor::EnableMigrationEvents() {
  nlohmann::json caps = {{"capabilities", {{{"capability", "events"}, {"state", true}}}}};
  (void)Execute("migrate-set-capabilities", caps, 5000);
}

void VmMonitor::WaitForFreshSnapshot(int timeout_ms) {
  uint64_t start = Snapshot().polls;
  int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  while (MonotonicMicros() < deadline) {
    VmSnapshot s = Snapshot();
    if (s.polls >= start + 2 || s.qmp_lost) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void VmMonitor::TakeEvents() {
  // REQUIRES: client_mu_ held
  std::vector<qmp::Event> events = client_->TakeEvents();
  if (events.empty()) return;
  std::lock_guard<std::mutex> l(snap_mu_);
  for (const qmp::Event& e : events) {
    if (e.name == "STOP" && snap_.stop_us == 0) {
      snap_.stop_us = e.timestamp_us;
      stop_us_ = e.timestamp_us;
    }
    if (e.name == "RESUME") snap_.resume_us = e.timestamp_us;
    if (e.name == "MIGRATION" && e.data.value("status", "") == "completed")
      snap_.completed_us = e.timestamp_us;
  }
}

void VmMonitor::PollOnce() {
  std::lock_guard<std::mutex> l(client_mu_);
  auto st = client_->Execute("query-status", nlohmann::json::object(), reply_ms_);
  auto mig = st.ok() ? client_->Execute("query-migrate", nlohmann::json::object(), reply_ms_)
                     : Result<nlohmann::json>(st.status());
  TakeEvents();
  std::lock_guard<std::mutex> s(snap_mu_);
  if (!st.ok() || !mig.ok()) {
    snap_.qmp_error = (!st.ok() ? st.status() : mig.status()).message();
    if (client_->last_timed_out() && !client_->closed()) {
      if (snap_.qmp_unanswered_since_us == 0) snap_.qmp_unanswered_since_us = MonotonicMicros();
    } else {
      snap_.qmp_lost = true;
    }
    return;
  }
  snap_.qmp_unanswered_since_us = 0;
  snap_.run_status = st->value("status", "");
  snap_.migration = *mig;
  snap_.migration_status = mig->value("status", "");
  ++snap_.polls;
}

void VmMonitor::Loop() {
  int64_t next_poll = 0;
  while (!stop_) {
    if (Snapshot().qmp_lost) return;
    if (MonotonicMicros() >= next_poll) {
      PollOnce();
      next_poll = MonotonicMicros() + int64_t(poll_ms_) * 1000;
      continue;
    }
    pollfd p{client_->fd(), POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      std::lock_guard<std::mutex> l(client_mu_);
      Status s = client_->PollEvents();
      TakeEvents();
      if (!s.ok()) {
        std::lock_guard<std::mutex> sl(snap_mu_);
        snap_.qmp_lost = true;
        snap_.qmp_error = s.message();
      }
    }
  }
}

}  // namespace gangmig::migrate
