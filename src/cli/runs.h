// One measured migration run on this machine, shared by `gangmig demo` and
// `gangmig bench`: boot a gang (testbed::Scenario), migrate it one way (gangmig, plain
// QEMU, or plain QEMU with multifd+zstd), and collect the figures: the report, bytes on
// the link from the kernel's loopback counters, CPU seconds of every process involved,
// and the byte-for-byte RAM check.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "migrate/report.h"
#include "migrate/sender.h"
#include "testbed/scenario.h"

namespace gangmig::cli {

enum class Mode { kGang, kDirect, kDirectMultifdZstd };
const char* ModeName(Mode m);  // "gang", "direct", "direct-multifd-zstd"

struct Run {
  migrate::Report report;
  Status status;
  std::string ram_check;  // "identical", the difference, or why it was not compared
  uint64_t kernel_link_bytes = 0;
  uint64_t distinct_pages = 0;  // distinct non-zero pages over the sources' RAM
  // Those pages after zstd at the sender's level in 256 KiB pieces (gang run only;
  // testbed::MeasureDistinctNonZeroPages).
  uint64_t distinct_zstd_bytes = 0;
  uint64_t stream_nonpage_bytes = 0;
  double receiver_cpu = 0;                    // gangmig receive (gang run only)
  double qemu_src_cpu = 0, qemu_dst_cpu = 0;  // during the migration
  uint64_t receiver_peak_rss_kib = 0;
};

// Boots the gang described by `config` (its workdir must exist), migrates it in `mode`
// and stops every VM again. The gang mode uses `key_file` and the sender's tuning
// (verify_copies, compression, features) from `tuning`; its VMs, receiver and key are
// filled in here.
// The gang mode's receiver: a page cache (receive --cache) and files to seed it from
// before the session (--seed-from, the RAM of VMs running on the destination host).
struct ReceiverSetup {
  std::string cache;
  std::vector<std::string> seed_from;
};
Run RunOnce(Mode mode, testbed::ScenarioConfig config, const std::string& key_file,
            const migrate::SenderOptions& tuning = {}, const ReceiverSetup& receiver = {});

// There and back: migrates the gang in `mode`, resumes it at the destination, lets it
// run dwell_s seconds (its workload too), and migrates it back to fresh destinations
// (testbed::Scenario::TurnAround). The gang mode uses the senders' and receivers'
// settings below for each trip; the baselines ignore them. Returns both trips' runs.
struct ReturnSetup {
  migrate::SenderOptions out_sender, back_sender;
  ReceiverSetup out_receiver, back_receiver;
  int dwell_s = 60;
};
std::pair<Run, Run> RunThereAndBack(Mode mode, testbed::ScenarioConfig config,
                                    const std::string& key_file, const ReturnSetup& setup);

// Moves this process into a private network namespace with lo up and, if link_mbit > 0,
// shaped with tc tbf. Returns a description of the link for reports.
std::string IsolateNetwork(int link_mbit);
// Re-shapes the namespace's loopback (after IsolateNetwork) to `link_mbit`.
Status SetLinkRate(int link_mbit);
// guest/out next to the build directory, or $GANGMIG_GUEST_DIR.
std::string DefaultGuestDir();

// Creates a private work directory for VMs, in /dev/shm when there is one (guest RAM
// files then live in memory, not on a disk that would write them back), and arranges
// for it to be removed if this process is interrupted (SIGINT, SIGTERM). Returns "" on
// failure. QEMUs started by a Scenario die with this process (PR_SET_PDEATHSIG).
std::string MakeWorkdir(const char* prefix);

}  // namespace gangmig::cli
