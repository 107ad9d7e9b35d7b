// When compression pays. A body is compressed in one zstd call (level 1 by default:
// ~1.2 GB/s of guest pages per core on the test machine, about ten times a 1 Gbit/s
// link) and replaced by a ZFRAMES frame when that saves at least 2%. In auto mode one rule keeps
// compression from ever making a run slower than sending raw: the compressor must not
// become the bottleneck. When the link is idle (less than
//     busy_backlog bytes wait) and has been seen to take data faster than zstd
//     compresses on this thread (raw bytes per CPU second, measured as it runs), a body
//     goes raw. A busy link, or one slower than the compressor, gets compressed bodies:
//     every byte saved is link time saved, and on hosts where gangmig's own CPU is the
//     limit fewer bytes also mean less MAC, copying and socket work at both ends
//     (measured on the 2-core test machine: less total CPU with every body compressed).
// Bodies that do not compress (random or already compressed memory) are tried anyway:
// zstd gives up on such data at ~0.8 us per 4 KiB page here (a compressible page costs
// ~10), while skipping bodies after poor ones, as an earlier rule did, sent the
// compressible bodies that follow random ones raw: ~4.5% more bytes for the project's
// guests (256 KiB pieces of two guests' distinct pages: 249.7 MB against 238.9 MB).
// The thread CPU time spent is counted, so reports can show what the saving cost.
#include "encode/frame_compressor.h"

#include "base/clock.h"
#include "wire/frame.h"

namespace gangmig::encode {
namespace {

constexpr size_t kHeader = wire::kZFramesHeaderSize + wire::kZFramesRawLenSize;

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

bool FrameCompressor::Compress(ZstdCompressor* zstd, int level, ByteView body, Bytes* out) {
  out->resize(kHeader + ZstdCompressor::Bound(body.size()));
  size_t n = zstd->Compress(body, level, out->data() + kHeader, out->size() - kHeader);
  if ((kHeader + n) * 50 > body.size() * 49) {  // saves less than 2%
    out->clear();
    return false;
  }
  wire::PutZFramesHeader(out->data(), n, body.size());
  out->resize(kHeader + n);
  return true;
}

void FrameCompressor::Record(size_t raw, bool compressed, size_t out_size, double cpu_seconds) {
  stats_.cpu_seconds += cpu_seconds;
  stats_.raw_tried += raw;
  if (!compressed) {
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
  bool ok = Compress(&zstd_, options_.level, body, out);
  Record(body.size(), ok, out->size(), ThreadCpuSeconds() - t0);
  return ok;
}

}  // namespace gangmig::encode
