// When compression pays. A body is compressed in one zstd call (level 1 by default:
// ~1.2 GB/s of guest pages per core on the test machine, about ten times a 1 Gbit/s
// link) and replaced by a ZFRAMES frame when that saves at least 2%. In auto mode two rules keep
// compression from ever making a run slower than sending raw:
//   - the compressor must not become the bottleneck: when the link is idle (less than
//     busy_backlog bytes wait) and has been seen to take data faster than zstd
//     compresses on this thread (raw bytes per CPU second, measured as it runs), a body
//     goes raw. A busy link, or one slower than the compressor, gets compressed bodies:
//     every byte saved is link time saved, and on hosts where gangmig's own CPU is the
//     limit fewer bytes also mean less MAC, copying and socket work at both ends
//     (measured on the 2-core test machine: less total CPU with every body compressed);
//   - the data must compress: a moving average of recent ratios above 0.97 (random or
//     already compressed memory) stops compression, with one probe every 16 bodies to
//     notice when the data changes.
// The thread CPU time spent is counted, so reports can show what the saving cost.
#include "encode/frame_compressor.h"

#include "base/clock.h"
#include "wire/frame.h"

namespace gangmig::encode {
namespace {

constexpr double kPoorRatio = 0.97;
constexpr uint32_t kProbeEvery = 16;
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
  double speed = stats_.raw_in > (1u << 20) && stats_.cpu_seconds > 0
                     ? double(stats_.raw_in) / stats_.cpu_seconds
                     : 0;
  if (backlog_ < options_.busy_backlog && speed > 0 && link_rate_ > speed * parallelism_) {
    ++stats_.skipped_idle;
    return false;
  }
  if (recent_ratio_ > kPoorRatio && ++since_try_ < kProbeEvery) {
    ++stats_.skipped_poor;
    return false;
  }
  since_try_ = 0;
  return true;
}

void FrameCompressor::Observe(double ratio) { recent_ratio_ = 0.5 * recent_ratio_ + 0.5 * ratio; }

bool FrameCompressor::Compress(ZstdCompressor* zstd, int level, ByteView body, Bytes* out,
                               double* ratio) {
  out->resize(kHeader + ZstdCompressor::Bound(body.size()));
  size_t n = zstd->Compress(body, level, out->data() + kHeader, out->size() - kHeader);
  *ratio = double(n) / double(body.size());
  if ((kHeader + n) * 50 > body.size() * 49) {  // saves less than 2%
    out->clear();
    return false;
  }
  wire::PutZFramesHeader(out->data(), n, body.size());
  out->resize(kHeader + n);
  return true;
}

void FrameCompressor::Record(size_t raw, bool compressed, size_t out_size, double ratio,
                             double cpu_seconds) {
  stats_.cpu_seconds += cpu_seconds;
  Observe(ratio);
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
  double ratio = 1;
  bool ok = Compress(&zstd_, options_.level, body, out, &ratio);
  Record(body.size(), ok, out->size(), ratio, ThreadCpuSeconds() - t0);
  return ok;
}

}  // namespace gangmig::encode
