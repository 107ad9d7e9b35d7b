// Thin wrappers over libzstd's one-shot calls with a reused context each. The
// decompressor is given the exact output size up front (ZFRAMES carries it), decodes
// straight into a buffer of that size and checks that the frame filled it exactly; a
// frame that would decode to more fails inside zstd with "Destination buffer is too
// small", never by growing memory.
#include "encode/zstd_codec.h"

#include <zstd.h>

#include <cstdlib>
#include <string>

namespace gangmig::encode {

ZstdCompressor::ZstdCompressor() : cctx_(ZSTD_createCCtx()) {
  if (cctx_ == nullptr) std::abort();  // out of memory
}

ZstdCompressor::~ZstdCompressor() { ZSTD_freeCCtx(cctx_); }

size_t ZstdCompressor::Bound(size_t n) { return ZSTD_compressBound(n); }

size_t ZstdCompressor::Compress(ByteView src, int level, uint8_t* dst, size_t cap) {
  size_t n = ZSTD_compressCCtx(cctx_, dst, cap, src.data(), src.size(), level);
  if (ZSTD_isError(n)) std::abort();  // only a too small dst can fail: a broken REQUIRES
  return n;
}

ZstdDecompressor::ZstdDecompressor(size_t max_output)
    : dctx_(ZSTD_createDCtx()), max_output_(max_output) {
  if (dctx_ == nullptr) std::abort();
  int log = 10;
  while ((size_t{1} << log) < max_output && log < 30) ++log;
  ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, log);
}

ZstdDecompressor::~ZstdDecompressor() { ZSTD_freeDCtx(dctx_); }

Status ZstdDecompressor::Decompress(ByteView src, size_t raw_len, Bytes* out) {
  if (raw_len == 0 || raw_len > max_output_)
    return Status::Error("zstd: raw length " + std::to_string(raw_len) + " out of range (max " +
                         std::to_string(max_output_) + ")");
  out->resize(raw_len);
  size_t n = ZSTD_decompressDCtx(dctx_, out->data(), raw_len, src.data(), src.size());
  if (ZSTD_isError(n)) return Status::Error(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != raw_len)
    return Status::Error("zstd: decompressed to " + std::to_string(n) + " bytes, expected " +
                         std::to_string(raw_len));
  return Status::Ok();
}

}  // namespace gangmig::encode
