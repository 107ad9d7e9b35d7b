// The figures of one gang (or direct) migration, per VM and in total, as the sender
// collects them: written as JSON for machines (--report) and as a table for people.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gangmig::migrate {

// One VM named on the command line: --vm name=N,qmp=PATH (through a receiver, which
// maps the name to its destination), or name=N,qmp=PATH,dest=ADDR[,dest-qmp=PATH] (--direct).
struct VmSpec {
  std::string name;
  std::string qmp;       // source VM's QMP socket (gangmig's own)
  std::string dest;      // --direct: where the destination QEMU listens (tcp:HOST:PORT)
  std::string dest_qmp;  // --direct, optional: the destination VM's QMP socket
};

struct VmReport {
  std::string name;
  std::string status = "pending";     // "completed" or "failed"
  std::string error;                  // why it failed, and what was done about the source
  std::string phase = "waiting";      // for progress: waiting, streaming, finishing, done, failed
  int64_t start_us = 0;               // wall clock: migrate command issued
  int64_t stop_us = 0;                // source STOP event
  int64_t dest_loaded_us = 0;         // destination finished loading (closed the stream)
  int64_t dest_resume_us = 0;         // destination RESUME event (0: stayed paused)
  int64_t end_us = 0;                 // destination ready (resume, else loaded)
  uint64_t stream_bytes = 0;          // bytes the source QEMU produced (all channels)
  uint64_t link_bytes = 0;            // gang: this VM's share of the link; direct: QEMU's
  uint64_t frame_bytes = 0;           // gang: frames made for this VM, before compression
  uint64_t stream_bytes_at_stop = 0;  // gang: stream bytes read when the source STOPped
  uint64_t frame_bytes_at_stop = 0;   // gang: frame bytes made by then
  int64_t source_eof_us = 0;          // gang: the source closed its main stream
  int64_t source_last_data_us = 0;    // gang: the last bytes of the main stream were read
  int64_t ram_end_us = 0;             // gang: its RAM END section (the last round) began
  int64_t dest_eof_frame_us = 0;      // gang: the receiver got the stream's end
  int64_t dest_delivered_us = 0;      // gang: ... and had written it all to the destination
  int64_t source_completed_us = 0;    // gang: the source's MIGRATION "completed" event
  uint64_t rp_bytes = 0;              // return-path bytes relayed back
  uint64_t pages_sent = 0;            // page contents sent in full
  uint64_t pages_referenced = 0;      // pages sent as a reference to content already sent
  uint64_t pages_delta = 0;           // pages sent as a change to an earlier version (DELTA)
  uint64_t delta_bytes = 0;           // bytes of those changes
  uint64_t pages_cached = 0;          // pages named by SHA-256: in the receiver's cache (CREF)
  uint64_t zero_pages = 0;            // zero-page records (passed verbatim, 1 byte each)
  uint64_t passthrough_bytes = 0;     // bytes forwarded without parsing after a fallback
  std::string passthrough_reason;     // why this VM's stream fell back to pass-through
  std::string source_final_state;     // run state of the source VM when gangmig finished
  double manager_downtime_ms = -1;    // the VM manager's own figure (libvirt job info), if any

  double end_to_end_s() const;
  double downtime_ms() const;        // -1 when unknown
  std::string downtime_end() const;  // "resume", "loaded", "libvirt" or ""
};

inline VmReport MakeVmReport(const std::string& name) {
  VmReport r;
  r.name = name;
  return r;
}

struct Report {
  std::string mode;  // "gang" or "direct"
  std::vector<VmReport> vms;
  int64_t start_us = 0, end_us = 0;
  uint64_t link_tx_bytes = 0;  // socket bytes sent on the link (gang: to the receiver)
  uint64_t link_rx_bytes = 0;
  double cpu_seconds = 0;  // of this gangmig process
  uint64_t peak_rss_kib = 0;
  std::string error;                                // whole-run failure, if any
  nlohmann::json extra = nlohmann::json::object();  // e.g. kernel link counters

  nlohmann::json ToJson() const;
  std::string Table() const;  // human-readable summary
};

uint64_t PeakRssKib();  // VmHWM of this process

}  // namespace gangmig::migrate
