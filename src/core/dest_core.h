// The destination core: the receiver's data path for one session, without sockets,
// threads or QMP. Verified record bodies' frames go in; each VM channel's stream bytes
// come out, exactly as the source QEMU wrote them. `receive`, the pipeline tests and the
// micro-benchmarks all run this same code.
//
//   ZFRAMES -> zstd -> the frames inside, handled in order (no nesting)
//
// Inflating a ZFRAMES frame is the one costly step, and it needs none of the core's
// state: Inflate() is static, so a receiver may run it on worker threads (each with its
// own decompressor) and hand the result to OnInflated() in frame order. OnFrame() does
// both steps inline; the two paths share every check and produce the same errors.
//   DATA -> bytes;  PAGE -> store, bytes;  REF -> stored page;  DELTA -> base + runs, store
//   any other sender frame -> Output::OnControl (VM_OPEN, CHANNEL_*, ABORT, GOODBYE)
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"
#include "encode/zstd_codec.h"
#include "index/page_store.h"
#include "wire/frame.h"

namespace gangmig::core {

struct DestStats {
  uint64_t zframes = 0;        // ZFRAMES frames expanded
  uint64_t zframes_bytes = 0;  // their size on the wire (frame included)
  uint64_t zframes_raw = 0;    // what they expanded to
  uint64_t pages = 0;          // PAGE frames
  uint64_t refs = 0;           // REF frames
  uint64_t deltas = 0;         // DELTA frames
  uint64_t crefs = 0;          // CREF frames (pages named by SHA-256, from the cache)
};

class DestCore {
 public:
  // Where the core's results go; calls come in frame order.
  class Output {
   public:
    virtual ~Output() = default;
    // The next bytes of channel f.channel of VM f.vm (a DATA payload or a whole page).
    // `bytes` is valid only during the call.
    virtual Status OnStreamBytes(const wire::Frame& f, ByteView bytes) = 0;
    // Any other frame from the sender: VM_OPEN, CHANNEL_OPEN, CHANNEL_EOF, FILL, ABORT,
    // GOODBYE, PING.
    virtual Status OnControl(const wire::Frame& f) = 0;
    // The content of CREF number `cref` (counted from 0 in the session), whose SHA-256 is
    // `key`: it must be exactly the page the sender named (the page cache's entry, or the
    // sender's FILL, both checked against `key`). The view must stay valid during the call.
    virtual Result<ByteView> OnCref(uint32_t cref, ByteView key) {
      return Status::Error("CREF without a page cache");
    }
  };

  // `features`: what the handshake agreed (wire::kFeature*); ZFRAMES and DELTA frames
  // are refused unless their feature was agreed. `max_store`: bytes of distinct page
  // contents the session may hold; a PAGE or DELTA beyond it ends the session. `store`:
  // how many of them stay in RAM, and where the rest spill (index/page_store.h).
  explicit DestCore(uint16_t features, uint64_t max_store = kNoStoreLimit,
                    const index::PageStore::Options& store = {});
  static constexpr uint64_t kNoStoreLimit = UINT64_MAX;

  // Handles one frame of a verified body. The first error ends the session: its text
  // names the frame ("DELTA to page id 7 but only 3 pages were sent").
  Status OnFrame(const wire::Frame& f, Output* out);

  // Whether ZFRAMES frames are accepted (zstd was agreed); when false, OnFrame refuses
  // them before anything is decompressed, so there is nothing to inflate ahead.
  bool zstd() const { return (features_ & wire::kFeatureZstd) != 0; }
  // Whether CREF and FILL frames are accepted (the page cache was agreed).
  bool cache() const { return (features_ & wire::kFeatureCache) != 0; }
  // CREF frames handled so far: the number the next CREF gets.
  uint32_t crefs() const { return crefs_; }
  // Step 1 of a ZFRAMES frame `f`, on any thread: decompresses its payload into *frames
  // (exactly raw_len bytes, raw_len <= wire::kMaxRecordBody). Pure; `zstd` must not be
  // in use by another thread. Errors: "ZFRAMES: zstd: ..." (docs/WIRE.md §4.2).
  // REQUIRES: f.type == kZFrames and f comes from a FrameReader (payload >= 5 bytes);
  // zstd->max_output() == wire::kMaxRecordBody (the bound on raw_len).
  static Status Inflate(const wire::Frame& f, encode::ZstdDecompressor* zstd, Bytes* frames);
  // Step 2, in frame order: handles `f` as OnFrame would, given `inflated`, the result of
  // Inflate(f, ..., frames). Every check OnFrame makes before decompressing comes first
  // (so a ZFRAMES after GOODBYE or without zstd gets those errors, not inflated's).
  // `f` and `frames` must stay valid during the call.
  // REQUIRES: f.type == kZFrames
  Status OnInflated(const wire::Frame& f, const Status& inflated, ByteView frames, Output* out);
  // OnInflated in two steps, for a receiver that hands the inner frames over one at a
  // time (and may pause between them): BeginInflated makes every check OnInflated makes
  // before the first inner frame; then each frame a FrameReader returns from `frames`
  // goes to OnInflatedFrame, in order.
  // REQUIRES: f.type == kZFrames
  Status BeginInflated(const wire::Frame& f, const Status& inflated, ByteView frames);
  Status OnInflatedFrame(const wire::Frame& inner, Output* out);

  // True once the sender's GOODBYE was handled: it sends nothing more.
  bool goodbye() const { return goodbye_; }
  uint32_t pages() const { return store_.size(); }
  uint64_t bytes_held() const { return store_.bytes_held(); }
  uint64_t bytes_spilled() const { return store_.bytes_spilled(); }
  const DestStats& stats() const { return stats_; }

 private:
  Status Admit(const wire::Frame& f) const;
  Status AdmitZFrames() const;
  Status Expand(ByteView frames, Output* out);
  Status MayStore() const;
  Result<ByteView> Page(const wire::Frame& f, Output* out);
  Result<ByteView> Store(ByteView page);

  uint16_t features_;
  uint64_t max_store_;
  uint32_t crefs_ = 0;
  bool goodbye_ = false;
  index::PageStore store_;
  encode::ZstdDecompressor zstd_;
  Bytes expanded_;  // the frames of the ZFRAMES being handled
  uint8_t page_[wire::kPageSize];
  DestStats stats_;
};

}  // namespace gangmig::core
