// The source side of a gang migration: points every source QEMU at a local endpoint,
// parses each migration stream, sends each distinct page content once over one
// authenticated connection to the receiver, relays the return path back to QEMU, and on
// any failure makes sure every source VM keeps running.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "encode/frame_compressor.h"
#include "migrate/join_queue.h"
#include "migrate/report.h"
#include "migrate/source_control.h"
#include "wire/wire_format.h"

namespace gangmig::migrate {

struct SenderOptions {
  std::string receiver;  // HOST:PORT of `gangmig receive`
  Bytes key;             // shared key (file contents)
  std::vector<VmSpec> vms;
  std::string workdir;           // where the local unix endpoints go ("" = a new /tmp dir)
  size_t max_buffer = 1u << 20;  // link bytes queued before QEMU sockets stop being read
  int timeout_s = 900;           // give up (and roll back) after this long
  uint64_t verify_copies = uint64_t{1} << 30;  // bytes of page copies kept to prove equality
  // Of those, the newest page_ram bytes stay in RAM (UINT64_MAX: all of them). An older
  // copy is replaced by its SHA-256 (index/page_index.h, drop_copies), or, with a
  // spill_dir, goes to a private spill file there (index/page_store.h) and stays a delta
  // base. Measured in the demo: the spill file's page-cache writes were ~40% of the
  // sender's data thread; a slab's digests cost ~1 µs a page.
  uint64_t page_ram = uint64_t{128} << 20;
  std::string spill_dir;
  // This host's page cache (receive --cache on the same host uses the same DIR): every
  // distinct page sent is kept there, so when the VMs migrate back to this host, the
  // pages it still holds need not cross again. Empty: none.
  std::string cache_dir;
  uint64_t cache_size = uint64_t{8} << 30;
  // libvirt domains (migrate --libvirt): VM names are domain names, libvirt starts and
  // rolls back each migration, and each stream comes to socket_dir/NAME.sock -- a path
  // that must mean the same on the destination host, where its receiver maps NAME to
  // it (receive --dest-dir socket_dir --dest-wait SEC).
  std::optional<LibvirtTarget> libvirt;
  std::string socket_dir = "/run/gangmig";
  // gangmig proxy: no VMs are given (vms is empty); streams that connected by themselves
  // arrive through `joins`, each becoming a VM of this session (or one more channel of a
  // VM of that name still under way: multifd). The session ends once every VM is done
  // and none joined for linger_ms; `timeout_s` then bounds each VM from its join.
  JoinQueue* joins = nullptr;
  int linger_ms = 3000;
  bool progress = true;
  encode::CompressionOptions compression;    // of record bodies (when the receiver agrees)
  int threads = -1;  // compressing record bodies side by side (-1: one per CPU, at most 8)
  uint16_t features = wire::kFeaturesKnown;  // offered to the receiver (wire::kFeature*)
  uint16_t required_features = 0;            // refuse a receiver without these
  // Pages read from a source but not yet given to its destination, at most (0: no limit).
  uint64_t dest_window_pages = 1024;
};

// Makes SIGINT/SIGTERM end a running migration the safe way (rolled back, sources kept
// running) instead of killing the process mid-way. Called by Run*Migration.
void InstallInterruptHandler();
// True once SIGINT/SIGTERM arrived after InstallInterruptHandler().
bool Interrupted();

// Runs the whole gang migration. Fills `report` (also on failure). Returns an error that
// names what failed for which VM; by then every source VM not migrated is running again.
Status RunGangMigration(const SenderOptions& options, Report* report);

}  // namespace gangmig::migrate
