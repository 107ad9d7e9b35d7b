// Byte buffers and endian-explicit loads and stores: the one place where integers meet
// bytes. Put* appends to a buffer; Load* reads from a pointer the caller has checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gangmig {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsChars(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

inline uint16_t LoadBE16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t LoadBE32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline uint64_t LoadBE64(const uint8_t* p) { return uint64_t(LoadBE32(p)) << 32 | LoadBE32(p + 4); }

// Overwrites 4 bytes at p (a place the caller reserved).
inline void StoreBE32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

inline void StoreBE64(uint8_t* p, uint64_t v) {
  StoreBE32(p, uint32_t(v >> 32));
  StoreBE32(p + 4, uint32_t(v));
}

inline void PutU8(Bytes* out, uint8_t v) { out->push_back(v); }
inline void PutBE16(Bytes* out, uint16_t v) {
  out->push_back(uint8_t(v >> 8));
  out->push_back(uint8_t(v));
}
inline void PutBE32(Bytes* out, uint32_t v) {
  PutBE16(out, uint16_t(v >> 16));
  PutBE16(out, uint16_t(v));
}
inline void PutBE64(Bytes* out, uint64_t v) {
  PutBE32(out, uint32_t(v >> 32));
  PutBE32(out, uint32_t(v));
}
inline void PutBytes(Bytes* out, ByteView b) { out->insert(out->end(), b.begin(), b.end()); }

// Lower-case hex of `b`, for messages and tests.
std::string HexString(ByteView b);

}  // namespace gangmig
