// The source core: the sender's whole data path for one session, without sockets,
// threads, clocks or QMP. QEMU stream bytes go in per VM and channel; wire frames come
// out, appended to one buffer (the pending body of wire::RecordWriter). `migrate`, the
// pipeline tests and the micro-benchmarks all run this same code.
//
//   bytes -> StreamParser (main channel) -> page: PageIndex -> REF | DELTA | PAGE
//                                        -> anything else:    DATA
//   bytes of an extra channel (multifd, preempt)            -> DATA
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "index/page_index.h"
#include "index/summary.h"
#include "qemu_stream/stream_parser.h"

namespace gangmig::core {

struct SourceOptions {
  index::PageIndex::Options index;
  // Send a page that changed since its last version crossed as a DELTA against that
  // version (only when the receiver agreed to kFeatureDelta).
  bool delta = false;
  // A delta longer than this goes as a whole PAGE instead.
  size_t max_delta = 2048;
  // The receiver's page cache was agreed (kFeatureCache): a new page its summary may
  // hold goes as CREF (its SHA-256) instead of PAGE, kept until CACHE_ACK in case the
  // receiver asks for it (NEED). At most this many are kept; beyond, pages go whole.
  bool dest_cache = false;
  size_t max_unacked_crefs = 4096;  // 16 MiB
  // Called with every page content the session had not seen before (sent as PAGE,
  // DELTA or CREF), valid during the call: `migrate --cache` keeps them in this host's
  // page cache, so a receiver here finds them when the VMs come back.
  std::function<void(ByteView)> on_new_content = nullptr;
};

// Per VM, all channels.
struct SourceVmStats {
  uint64_t pages_sent = 0;           // PAGE frames (new content, whole)
  uint64_t pages_referenced = 0;     // REF frames (content already sent)
  uint64_t pages_delta = 0;          // DELTA frames (new content, as a change)
  uint64_t delta_bytes = 0;          // their delta payloads
  uint64_t pages_cached = 0;         // CREF frames (content named, found in the dest cache)
  uint64_t frame_bytes = 0;          // every frame appended for this VM
  uint64_t extra_channel_bytes = 0;  // relayed verbatim on channels > 0
};

class SourceCore {
 public:
  // `frames` must outlive the core; frames are appended at its end.
  SourceCore(const SourceOptions& options, Bytes* frames);
  ~SourceCore();

  // Starts channel `ch` of `vm`. Channel 0 is QEMU's main stream and is parsed; any
  // other is relayed verbatim and announced to the receiver with CHANNEL_OPEN.
  // REQUIRES: ch == the number of channels opened for vm so far; vm < wire::kMaxVms.
  void OpenChannel(uint16_t vm, uint8_t ch);
  // Turns the next bytes of a channel into frames. Everything fed is in `frames` when
  // this returns, except a page split across calls (held by the parser).
  void Feed(uint16_t vm, uint8_t ch, ByteView bytes);
  // End of a channel's stream: what the parser held goes out, then CHANNEL_EOF.
  void Close(uint16_t vm, uint8_t ch);

  // Page cache (options.dest_cache): a SUMMARY frame's payload (a piece of the filter);
  // a NEED (appends the FILL; error if that CREF was never sent or already
  // acknowledged); a CACHE_ACK (drops what was kept for the CREFs before `crefs`).
  Status OnSummary(ByteView payload);
  Status OnNeed(uint32_t cref);
  void OnCacheAck(uint32_t crefs);
  uint64_t summary_bytes() const { return summary_bytes_; }
  // The content kept for CREF `cref` (empty: never sent, or acknowledged).
  ByteView KeptCref(uint32_t cref) const;
  uint64_t fills() const { return fills_; }

  // REQUIRES for both: channel 0 of vm was opened.
  const SourceVmStats& stats(uint16_t vm) const;
  const qemu_stream::StreamParser& parser(uint16_t vm) const;
  const index::PageIndex& index() const { return index_; }

 private:
  class ChannelEncoder;
  struct Vm;

  // CREF for `page` if the receiver's summary may hold it and there is room to keep it.
  bool SendCref(uint16_t vm, uint8_t ch, ByteView page);

  SourceOptions options_;
  Bytes* frames_;
  index::PageIndex index_;
  index::PageSummary summary_;
  uint64_t summary_bytes_ = 0, fills_ = 0;
  uint32_t next_cref_ = 0;
  std::deque<std::pair<uint32_t, Bytes>> unacked_;  // CREF number, content
  index::Sha256Pages fingerprinter_;
  std::vector<std::unique_ptr<Vm>> vms_;
};

}  // namespace gangmig::core
