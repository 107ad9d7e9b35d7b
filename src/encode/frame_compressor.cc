// When compression pays. A body is compressed in one zstd call (level 1 by default:
// ~1.2 GB/s of guest pages per core on the test machine, about ten times a 1 Gbit/s
// link) and replaced by a ZFRAMES frame when that saves at least 2%. In auto mode a body
// goes raw without running zstd in two cases:
//   - the compressor would become the bottleneck: the link is idle (less than
//     busy_backlog bytes wait) and has been seen to take data faster than zstd
//     compresses on this thread (raw bytes per CPU second, measured as it runs). A busy
//     link, or one slower than the compressor, gets compressed bodies: every byte saved
//     is link time saved, and on hosts where gangmig's own CPU is the limit fewer bytes
//     also mean less MAC, copying and socket work at both ends (measured on the 2-core
//     test machine: less total CPU with every body compressed);
//   - the body looks random (random or already compressed memory), judged from a sample
//     of the body itself: every 16th byte (16384 bytes of a 256 KiB body) gives an
//     order-0 entropy estimate (Miller-Madow corrected), and above 7.98 bits per byte
//     zstd cannot save 2% (~10 us per 256 KiB body, against ~1 ms for zstd on random
//     data in real runs). Offline, on two guests' distinct pages in 256 KiB pieces, it
//     skipped all 755 incompressible pieces and no compressible one. An earlier rule
//     (stop trying after poor bodies, probe every 16) sent the compressible bodies that
//     follow random ones raw: ~4.5% more bytes (249.7 MB against 238.9 MB).
// The thread CPU time spent is counted, so reports can show what the saving cost.
#include "encode/frame_compressor.h"

#include <cmath>

#include "base/clock.h"
#include "wire/frame.h"

namespace gangmig::encode {
namespace {

constexpr size_t kHeader = wire::kZFramesHeaderSize + wire::kZFramesRawLenSize;
constexpr size_t kSampleStride = 16;
constexpr size_t kMinSamples = 1024;
constexpr double kRandomBits = 7.98;

}  // namespace

bool FrameCompressor::ShouldTry(size_t body_size) {
  ++stats_.bodies;
  if (body_size <= kHeader + 16) return false;
  switch (options_.mode) {
    case CompressionOptions::Mode::kOff:
      return false;
    case CompressionOptions::Mode::kAlways:
      return true;
    case CompressionOptions::Mode::kAuto:
      break;
  }
  // Raw bytes per CPU second of one compressing thread; until 1 MiB was measured,
  // assume it keeps up (level 1 does ~1 GB/s of guest pages per core).
  double speed = stats_.raw_tried > (1u << 20) && stats_.cpu_seconds > 0
                     ? double(stats_.raw_tried) / stats_.cpu_seconds
                     : 0;
  if (backlog_ < options_.busy_backlog && speed > 0 && link_rate_ > speed * parallelism_) {
    ++stats_.skipped_idle;
    return false;
  }
  return true;
}

bool FrameCompressor::LooksRandom(ByteView body) {
  size_t samples = body.size() / kSampleStride;
  if (samples < kMinSamples) return false;
  uint32_t count[256] = {};
  for (size_t i = 0; i < samples; ++i) ++count[body[i * kSampleStride]];
  double n = double(samples), bits = 0;
  int seen = 0;
  for (uint32_t c : count) {
    if (c == 0) continue;
    ++seen;
    double p = double(c) / n;
    bits -= p * std::log2(p);
  }
  // The plug-in estimate is biased low by (seen - 1) / (2 n ln 2) bits (Miller-Madow).
  bits += double(seen - 1) / (2 * n * std::log(2.0));
  return bits > kRandomBits;
}

CompressOutcome FrameCompressor::Compress(ZstdCompressor* zstd, int level, bool skip_random,
                                          ByteView body, Bytes* out) {
  out->clear();
  if (skip_random && LooksRandom(body)) return CompressOutcome::kLooksRandom;
  out->resize(kHeader + ZstdCompressor::Bound(body.size()));
  size_t n = zstd->Compress(body, level, out->data() + kHeader, out->size() - kHeader);
  if ((kHeader + n) * 50 > body.size() * 49) {  // saves less than 2%
    out->clear();
    return CompressOutcome::kNotSmaller;
  }
  wire::PutZFramesHeader(out->data(), n, body.size());
  out->resize(kHeader + n);
  return CompressOutcome::kCompressed;
}

void FrameCompressor::Record(size_t raw, CompressOutcome outcome, size_t out_size,
                             double cpu_seconds) {
  stats_.cpu_seconds += cpu_seconds;
  if (outcome == CompressOutcome::kLooksRandom) {
    ++stats_.skipped_random;
    return;
  }
  stats_.raw_tried += raw;
  if (outcome == CompressOutcome::kNotSmaller) {
    ++stats_.not_smaller;
    return;
  }
  ++stats_.compressed;
  stats_.raw_in += raw;
  stats_.zframes_out += out_size;
}

bool FrameCompressor::Transform(ByteView body, Bytes* out) {
  if (!ShouldTry(body.size())) return false;
  double t0 = ThreadCpuSeconds();
  CompressOutcome outcome = Compress(&zstd_, options_.level, skip_random(), body, out);
  Record(body.size(), outcome, out->size(), ThreadCpuSeconds() - t0);
  return outcome == CompressOutcome::kCompressed;
}

}  // namespace gangmig::encode
