// Linear probing over a power-of-two array kept at most half full, so a lookup that
// misses (every new page) reads ~2.5 slots on average: usually one or two cache lines.
// A key's home slot comes from its low 64 bits by Fibonacci hashing (a multiply, then
// the top bits): the keys are already uniform when the hash is whole, and tests that keep
// only a few bits of it (PageIndex::Options::hash_bits) still spread over the table.
// Keys are never removed, so an empty slot ends every probe sequence. The table doubles
// when it passes half full; the id kNone marks an empty slot (no page has that id: the
// index numbers pages below it).
//
// Memory: 24 bytes a slot, 48 to 96 bytes per distinct fast hash.
#include "index/head_table.h"

#include <cassert>

namespace gangmig::index {
namespace {
constexpr int kInitialLog2 = 10;
}  // namespace

HeadTable::HeadTable() : slots_(size_t{1} << kInitialLog2), shift_(64 - kInitialLog2) {}

size_t HeadTable::Home(const FastHash& key) const {
  return size_t((key.lo * 0x9E3779B97F4A7C15ull) >> shift_);
}

HeadTable::Slot* HeadTable::Find(const FastHash& key) {
  size_t mask = slots_.size() - 1;
  for (size_t i = Home(key);; i = (i + 1) & mask) {
    Slot* s = &slots_[i];
    if (s->id == kNone || s->key == key) return s;
  }
}

void HeadTable::Set(Slot* slot, const FastHash& key, uint32_t id) {
  assert(id != kNone);
  bool added = slot->id == kNone;
  slot->key = key;
  slot->id = id;
  if (added && ++used_ > slots_.size() / 2) Grow();
}

void HeadTable::Grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  --shift_;
  for (const Slot& s : old) {
    if (s.id != kNone) *Find(s.key) = s;
  }
}

}  // namespace gangmig::index
