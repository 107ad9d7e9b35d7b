// SHA-256 of 4 KiB pages, one at a time or many at once. Many at once uses Intel's
// multi-buffer library (intel-ipsec-mb: 16 pages side by side with AVX-512, ~1 µs a page
// here against ~2.5 µs for one at a time with SHA-NI) when gangmig is built with it, and
// OpenSSL otherwise; the digests are the same either way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/bytes.h"

namespace gangmig::index {

struct Digest {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const Digest& o) const { return bytes == o.bytes; }
};

class Sha256Pages {
 public:
  Sha256Pages();
  ~Sha256Pages();
  Sha256Pages(const Sha256Pages&) = delete;
  Sha256Pages& operator=(const Sha256Pages&) = delete;

  // SHA-256 of `page` (any length).
  Digest Of(ByteView page);
  // out[i] = SHA-256 of the `page_size` bytes at pages + i * page_size, for i < n.
  void Many(const uint8_t* pages, size_t n, size_t page_size, Digest* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gangmig::index
