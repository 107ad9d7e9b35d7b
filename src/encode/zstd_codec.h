// zstd, one record body at a time: the compressor the sender uses for ZFRAMES frames and
// the decompressor the receiver checks them with. Each body is one independent zstd
// frame (no shared history), so bodies can be compressed and decompressed in any order
// and by any thread that owns a codec. Pure apart from zstd's own allocations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace gangmig::encode {

class ZstdCompressor {
 public:
  ZstdCompressor();
  ~ZstdCompressor();
  ZstdCompressor(const ZstdCompressor&) = delete;
  ZstdCompressor& operator=(const ZstdCompressor&) = delete;

  // The most bytes Compress may write for `n` input bytes.
  static size_t Bound(size_t n);
  // Compresses `src` at `level` (negative levels are zstd's --fast ones) into dst and
  // returns the size written. REQUIRES: cap >= Bound(src.size()).
  size_t Compress(ByteView src, int level, uint8_t* dst, size_t cap);

 private:
  ZSTD_CCtx_s* cctx_;
};

class ZstdDecompressor {
 public:
  // Refuses frames whose window exceeds what `max_output` needs, so a peer cannot make
  // the decoder allocate more than that.
  explicit ZstdDecompressor(size_t max_output);
  ~ZstdDecompressor();
  ZstdDecompressor(const ZstdDecompressor&) = delete;
  ZstdDecompressor& operator=(const ZstdDecompressor&) = delete;

  // Replaces *out with the decompression of `src`, which must be exactly `raw_len` bytes.
  // Errors: "zstd: raw length L out of range (max M)", "zstd: <zstd's reason>",
  // "zstd: decompressed to N bytes, expected L".
  Status Decompress(ByteView src, size_t raw_len, Bytes* out);
  // The largest raw_len Decompress accepts.
  size_t max_output() const { return max_output_; }

 private:
  ZSTD_DCtx_s* dctx_;
  size_t max_output_;
};

}  // namespace gangmig::encode
