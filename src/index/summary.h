// A summary of the pages a receiver's cache holds: a Bloom filter over each page's
// XXH3-64 (store::PageCache::FastHashOf), so that the sender can tell, for the cost of a
// fast hash and a few bit tests, whether a page may be there before it spends a SHA-256
// on naming it. A false positive costs one round trip (the receiver asks for the page:
// NEED/FILL); a false negative cannot happen. Anyone can craft pages whose fast hashes
// collide, which only buys them such round trips for their own pages: what a page
// resolves to is decided by its SHA-256, never by this filter.
//
// Shape: m = 2^log2_bits bits, k probes at (h1 + i*h2) mod m, h1 = the hash, h2 = a
// mix of it (odd). m is the power of two at or above 10 bits per page (at least 2^16),
// k = 7: about 1% false positives when full.
#pragma once

#include <cstdint>
#include <functional>

#include "base/bytes.h"
#include "base/status.h"

namespace gangmig::index {

class PageSummary {
 public:
  static constexpr uint8_t kProbes = 7;
  static constexpr uint8_t kMinLog2Bits = 16;
  static constexpr uint8_t kMaxLog2Bits = 30;  // 128 MiB of filter: ~100 M pages

  PageSummary() = default;
  // An empty filter sized for `pages` entries.
  static PageSummary ForPages(uint64_t pages);
  // A filter of the given shape, all bits clear (the sender's side, filled by Merge).
  static Result<PageSummary> OfShape(uint8_t k, uint8_t log2_bits);

  void Add(uint64_t fast_hash);
  bool MayContain(uint64_t fast_hash) const;

  uint8_t probes() const { return k_; }
  uint8_t log2_bits() const { return log2_; }
  const Bytes& bits() const { return bits_; }
  // Copies received bits in at byte `offset`. Error if they do not fit.
  Status Merge(uint32_t offset, ByteView bits);
  bool empty() const { return bits_.empty(); }

 private:
  uint8_t k_ = kProbes;
  uint8_t log2_ = 0;
  Bytes bits_;
};

}  // namespace gangmig::index
