// The sender's record-body compressor: turns the frames of a record body into one
// ZFRAMES frame (zstd) when that pays, and says how much it saved. It plugs into
// wire::RecordWriter as its BodyTransform; the policy deciding when to compress lives
// here too, fed with the link's backlog by the session.
#pragma once

#include <cstddef>
#include <cstdint>

#include "encode/zstd_codec.h"
#include "wire/record.h"

namespace gangmig::encode {

struct CompressionOptions {
  enum class Mode {
    kOff,     // never compress
    kAuto,    // compress unless the link outruns the compressor or the body looks random
    kAlways,  // compress every body (sent raw only when compression does not shrink it)
  };
  Mode mode = Mode::kAuto;
  int level = 1;  // zstd level; negative levels are zstd's fast ones
  // kAuto: with at least this many bytes waiting for the link, the link is the
  // bottleneck and compressing always pays.
  size_t busy_backlog = 128 * 1024;
};

struct CompressionStats {
  uint64_t bodies = 0;        // bodies seen
  uint64_t compressed = 0;    // sent as ZFRAMES
  uint64_t raw_in = 0;        // bytes of the bodies sent as ZFRAMES
  uint64_t raw_tried = 0;     // bytes of the bodies given to zstd
  uint64_t zframes_out = 0;   // bytes of those ZFRAMES frames
  uint64_t skipped_idle = 0;  // kAuto: the link was idle and faster than zstd
  uint64_t skipped_random = 0;  // kAuto: a sample of the body looked random
  uint64_t not_smaller = 0;   // compressed, but sent raw: it did not shrink
  double cpu_seconds = 0;     // thread CPU time spent sampling and compressing
};

// What Compress() did with a body.
enum class CompressOutcome {
  kCompressed,   // *out holds the ZFRAMES frame
  kNotSmaller,   // zstd ran but saved less than 2%: send the body raw
  kLooksRandom,  // skipped: a sample of the body looked random (zstd never ran)
};

// The policy and its bookkeeping run on one thread (the sender's); the compression
// itself, Compress(), is a pure function any thread may run with its own ZstdCompressor
// (migrate/seal_pipeline.h runs it on a worker pool). Transform() does all three inline.
class FrameCompressor : public wire::BodyTransform {
 public:
  explicit FrameCompressor(const CompressionOptions& options) : options_(options) {}

  // Bytes sealed but not yet taken by the link's socket; set before each seal.
  void SetBacklog(size_t bytes) { backlog_ = bytes; }
  // The fastest rate (bytes/s) the link has been seen to take data; 0 while unknown.
  void SetLinkRate(double bytes_per_second) { link_rate_ = bytes_per_second; }
  // How many threads compress side by side: the compressor keeps up with a link that
  // many times faster than one thread's measured speed.
  void SetParallelism(int threads) { parallelism_ = threads < 1 ? 1 : threads; }
  bool Transform(ByteView body, Bytes* out) override;
  const CompressionStats& stats() const { return stats_; }

  // Counts a body and says whether to try compressing it (the policy above).
  bool ShouldTry(size_t body_size);
  // Compresses `body` into *out as one ZFRAMES frame, unless `skip_random` and
  // LooksRandom(body), or compressing would not save at least 2% (out cleared then).
  static CompressOutcome Compress(ZstdCompressor* zstd, int level, bool skip_random,
                                  ByteView body, Bytes* out);
  // True when every 16th byte of `body` (at least 1024 of them) has an order-0 entropy
  // so close to 8 bits that zstd could not save 2%: random or already compressed data.
  static bool LooksRandom(ByteView body);
  // Books a tried body: what Compress() did, and the thread CPU time it took.
  void Record(size_t raw, CompressOutcome outcome, size_t out_size, double cpu_seconds);
  int level() const { return options_.level; }
  // Whether Compress() should skip bodies that look random (kAuto).
  bool skip_random() const { return options_.mode == CompressionOptions::Mode::kAuto; }

 private:
  CompressionOptions options_;
  ZstdCompressor zstd_;
  CompressionStats stats_;
  size_t backlog_ = 0;
  double link_rate_ = 0;
  int parallelism_ = 1;
};

}  // namespace gangmig::encode
