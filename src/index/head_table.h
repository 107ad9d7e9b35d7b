// HeadTable: the sender index's map from a page's fast hash to the newest page id with
// that hash (index/page_index.h chains the older ones). One flat array of slots with
// open addressing, so a lookup costs about one cache miss and adding a page allocates
// nothing (a node-based map costs three dependent misses and one allocation per page,
// which was a fifth of the sender path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gangmig::index {

// The fast candidate hash: XXH3-128 with a per-session secret seed.
struct FastHash {
  uint64_t lo = 0, hi = 0;
  bool operator==(const FastHash& o) const { return lo == o.lo && hi == o.hi; }
};

class HeadTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;  // "no id": an empty slot

  struct Slot {
    FastHash key;
    uint32_t id = kNone;
  };

  HeadTable();

  // The slot holding `key`, or the empty slot where it would go (its id is kNone).
  // Valid until the next Set().
  Slot* Find(const FastHash& key);
  // Starts loading the slot where Find(key) begins into the cache; no effect otherwise.
  void Prefetch(const FastHash& key) const { __builtin_prefetch(&slots_[Home(key)]); }
  // Stores `id` (!= kNone) as the newest id of `key` in `slot`, a result of Find(key).
  void Set(Slot* slot, const FastHash& key, uint32_t id);

  size_t size() const { return used_; }  // keys held
  size_t bytes_held() const { return slots_.size() * sizeof(Slot); }

 private:
  size_t Home(const FastHash& key) const;
  void Grow();

  std::vector<Slot> slots_;  // a power of two of them, at most half used
  size_t used_ = 0;
  int shift_;  // 64 - log2(slots_.size())
};

}  // namespace gangmig::index
