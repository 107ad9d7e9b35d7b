#include "index/head_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <utility>

namespace gangmig::index {
namespace {

// The head table against std::map through several doublings, with keys that differ only
// in `hi` and keys of a few bits (as with hash_bits < 64), which share home slots.
TEST(HeadTableTest, MatchesAReferenceMapThroughGrowth) {
  HeadTable table;
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> want;
  std::mt19937_64 rng(5);
  for (uint32_t i = 0; i < 20000; ++i) {
    uint64_t r = rng();
    FastHash k = i % 4 == 0   ? FastHash{rng(), rng()}
                 : i % 4 == 1 ? FastHash{r % 64, 0}        // few bits: many repeats
                 : i % 4 == 2 ? FastHash{12345, r % 1000}  // same lo, different hi
                              : FastHash{r % 5000, r >> 63};
    HeadTable::Slot* s = table.Find(k);
    auto it = want.find({k.lo, k.hi});
    ASSERT_EQ(s->id, it == want.end() ? HeadTable::kNone : it->second) << i;
    table.Set(s, k, i);
    want[{k.lo, k.hi}] = i;
  }
  EXPECT_EQ(table.size(), want.size());
  for (const auto& [k, id] : want) {
    const HeadTable::Slot* s = table.Find(FastHash{k.first, k.second});
    ASSERT_EQ(s->id, id);
    ASSERT_EQ(s->key, (FastHash{k.first, k.second}));
  }
  EXPECT_EQ(table.Find(FastHash{99, 99})->id, HeadTable::kNone);
  EXPECT_LE(table.size() * 2, table.bytes_held() / sizeof(HeadTable::Slot));
}

}  // namespace
}  // namespace gangmig::index
