#include "index/summary.h"

#include <cstring>

namespace gangmig::index {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

PageSummary PageSummary::ForPages(uint64_t pages) {
  PageSummary s;
  s.log2_ = kMinLog2Bits;
  while (s.log2_ < kMaxLog2Bits && (uint64_t{1} << s.log2_) < pages * 10) ++s.log2_;
  s.bits_.assign(size_t(1) << (s.log2_ - 3), 0);
  return s;
}

Result<PageSummary> PageSummary::OfShape(uint8_t k, uint8_t log2_bits) {
  if (k < 1 || k > 16) return Status::Error("summary: " + std::to_string(k) + " probes (1-16)");
  if (log2_bits < kMinLog2Bits || log2_bits > kMaxLog2Bits)
    return Status::Error("summary: 2^" + std::to_string(log2_bits) + " bits (2^16 to 2^30)");
  PageSummary s;
  s.k_ = k;
  s.log2_ = log2_bits;
  s.bits_.assign(size_t(1) << (log2_bits - 3), 0);
  return s;
}

void PageSummary::Add(uint64_t h) {
  uint64_t mask = (uint64_t{1} << log2_) - 1, h2 = Mix(h) | 1;
  for (uint8_t i = 0; i < k_; ++i) {
    uint64_t bit = (h + i * h2) & mask;
    bits_[bit >> 3] |= uint8_t(1u << (bit & 7));
  }
}

bool PageSummary::MayContain(uint64_t h) const {
  if (bits_.empty()) return false;
  uint64_t mask = (uint64_t{1} << log2_) - 1, h2 = Mix(h) | 1;
  for (uint8_t i = 0; i < k_; ++i) {
    uint64_t bit = (h + i * h2) & mask;
    if (!(bits_[bit >> 3] & (1u << (bit & 7)))) return false;
  }
  return true;
}

Status PageSummary::Merge(uint32_t offset, ByteView bits) {
  if (uint64_t(offset) + bits.size() > bits_.size())
    return Status::Error("summary: bytes " + std::to_string(offset) + ".." +
                         std::to_string(uint64_t(offset) + bits.size()) + " past its " +
                         std::to_string(bits_.size()) + " bytes");
  std::memcpy(bits_.data() + offset, bits.data(), bits.size());
  return Status::Ok();
}

}  // namespace gangmig::index
