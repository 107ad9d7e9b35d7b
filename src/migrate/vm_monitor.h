// VmMonitor: one thread per QEMU that owns a QMP connection, keeps a snapshot of the VM's
// run state and migration status, and records the timestamps of STOP/RESUME events.
//
// Why a thread: QEMU holds its big lock while it writes the last RAM pages of a migration,
// and QMP answers nothing meanwhile. If the data path waited on QMP it would stop reading
// the very socket QEMU is blocked on. So QMP lives off the data path: the event loop only
// reads snapshots, and issues commands (migrate, migrate_cancel, cont) at moments when it
// does not matter that they block.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "base/status.h"
#include "qmp/qmp_client.h"

namespace gangmig::migrate {

struct VmSnapshot {
  std::string run_status;        // query-status "status" ("running", "paused", ...)
  std::string migration_status;  // query-migrate "status" ("" when none yet)
  nlohmann::json migration;      // the last query-migrate reply
  int64_t stop_us = 0;           // timestamp of the first STOP event seen
  int64_t resume_us = 0;         // timestamp of the last RESUME event seen
  int64_t completed_us = 0;      // MIGRATION event with status "completed" (needs the
                                 // "events" capability, see EnableMigrationEvents)
  double manager_downtime_ms = -1;  // the VM manager's own downtime (libvirt), when known
  bool qmp_lost = false;         // the QMP connection broke (QEMU died?)
  // Monotonic time since which QMP has not answered a query round (0: it answers). Not a
  // lost connection: QEMU holds its big lock while it writes its last round, and when the
  // link (or gangmig) does not take those bytes its monitor is silent until they go.
  int64_t qmp_unanswered_since_us = 0;
  std::string qmp_error;         // why qmp_lost, or the last unanswered query
  uint64_t polls = 0;  // completed query rounds (lets callers wait for a fresh one)
};

class VmMonitor {
 public:
  // Takes a connected client. Polling starts at once, every `poll_ms`; a query QEMU has
  // not answered within `reply_ms` leaves the round unanswered (see VmSnapshot).
  VmMonitor(std::unique_ptr<qmp::Client> client, int poll_ms, int reply_ms = 15000);
  ~VmMonitor();
  VmMonitor(const VmMonitor&) = delete;
  VmMonitor& operator=(const VmMonitor&) = delete;

  VmSnapshot Snapshot() const;
  // Timestamp of the first STOP event (0: none yet). Cheap: no snapshot copy.
  int64_t StopUs() const { return stop_us_.load(std::memory_order_relaxed); }
  // Runs a command between two polling rounds and waits for its reply.
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& args = nlohmann::json::object(),
                                 int timeout_ms = 10000);
  // Waits until a polling round that started after this call has finished.
  void WaitForFreshSnapshot(int timeout_ms);
  // Turns on the "events" migration capability so that MIGRATION status changes arrive
  // with QEMU's own timestamps. It changes nothing in the stream. Best effort.
  void EnableMigrationEvents();
  const std::string& path() const { return path_; }
  // After qmp_lost: drops the old connection (QMP serves one client at a time) and
  // connects afresh, then polls as before. For a QEMU that did not answer in time (say,
  // blocked writing its migration stream) rather than one that died.
  Status Reconnect(int timeout_ms);

 private:
  void Loop();
  void PollOnce();
  void TakeEvents();

  std::unique_ptr<qmp::Client> client_;
  std::string path_;
  int poll_ms_;
  int reply_ms_;
  mutable std::mutex client_mu_;  // serialises every use of client_
  mutable std::mutex snap_mu_;
  VmSnapshot snap_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> stop_us_{0};
  std::thread thread_;
};

}  // namespace gangmig::migrate
