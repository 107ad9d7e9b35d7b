// The destination side: accepts the sender's authenticated connection, connects to each
// VM's destination QEMU, rebuilds every migration stream byte for byte from DATA, PAGE
// and REF frames, relays the return path back, and reports when each destination has
// loaded its stream (and, given its QMP socket, whether and when it resumed).
#pragma once

#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/ordered_work.h"
#include "base/status.h"
#include "migrate/dest_map.h"
#include "migrate/timeouts.h"
#include "wire/wire_format.h"

namespace gangmig::migrate {

struct ReceiverOptions {
  std::string listen;  // HOST:PORT
  Bytes key;
  bool once = false;             // exit after one session
  size_t max_buffer = 8u << 20;  // bytes queued towards one destination before pausing the link
  size_t max_session_buffer = 256u << 20;  // ... towards all destinations of one session
  uint64_t max_store = 0;  // bytes of distinct pages one session may hold (0: half the RAM)
  // Of those, the newest page_ram bytes per session stay in RAM; older pages go to a
  // private spill file in spill_dir (index/page_store.h). spill_dir "": the cache
  // directory if there is one, else /var/tmp. page_ram UINT64_MAX: never spill.
  // 1 GiB: a spilled page costs ~8 us of CPU here (the copy into fresh page cache), more
  // than all else the receiver does for it (docs/BENCHMARKS.md, issue 9 item 6).
  uint64_t page_ram = uint64_t{1024} << 20;
  std::string spill_dir;
  // Liveness (timeouts.h has the meaning; tests shorten them).
  int idle_ms = timeouts::kIdleMs;
  int keepalive_ms = timeouts::kKeepaliveMs;
  int dest_stall_ms = timeouts::kDestinationStallMs;
  // A destination that cannot be connected to yet is tried again for this long, while
  // the session goes on ("ready" is answered at once and the VM's frames wait within
  // max_buffer). For destinations that exist only once the migration has started:
  // under libvirt, the destination QEMU is created by the migration itself. 0: the
  // destination must be there when the VM opens.
  int dest_wait_ms = 0;
  bool verbose = true;
  uint16_t features = wire::kFeaturesKnown;  // accepted from senders (wire::kFeature*)
  // Where each VM's stream goes (migrate/dest_map.h): a map file, read again at the
  // start of each session, and/or a socket directory. At least one is required.
  std::string dest_map;
  std::string dest_dir;
  // The page cache (store/page_cache.h): every distinct page received is kept there, on
  // disk, across sessions and restarts, up to cache_size bytes. Empty: no cache.
  std::string cache_dir;
  uint64_t cache_size = uint64_t{8} << 30;
  // Files read into the cache before each session (the RAM files of VMs running on this
  // host: memory-backend-file, libvirt's memory_backing_dir). Requires cache_dir.
  std::vector<std::string> seed_from;
  // Worker threads that decompress ZFRAMES bodies (0: on the data thread).
  // REQUIRES: 0 <= threads <= OrderedWork::kMaxThreads
  int threads = OrderedWork::DefaultThreads();
};

// Connections that have not yet proven the key, at most: in all, and from one address.
// Beyond these, new connections are closed at once (senders retry).
inline constexpr size_t kMaxPendingHandshakes = 64;
inline constexpr size_t kMaxPendingPerAddress = 8;

// Where `options` puts the spill file: spill_dir, else the cache directory, else /var/tmp.
std::string SpillDir(const ReceiverOptions& options);

// The receiver host's destination map of `options` (the map file read now).
Result<DestMap> LoadDestMap(const ReceiverOptions& options);

// Serves sessions, several at once, each on its own thread, until an error (or, with
// `once`, until the first authenticated session ends; its error is returned). Without
// `once`, session errors are logged and serving goes on.
Status RunReceiver(const ReceiverOptions& options);

}  // namespace gangmig::migrate
