#include "encode/delta.h"

#include <gtest/gtest.h>

#include <random>

namespace gangmig::encode {
namespace {

Bytes RandomPage(uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes p(kDeltaPageSize);
  for (auto& b : p) b = uint8_t(rng());
  return p;
}

Bytes Apply(const Bytes& base, ByteView delta) {
  Bytes out(kDeltaPageSize);
  Status st = ApplyDelta(base, delta, out.data());
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

TEST(EncodeDelta, RoundTripsRandomChanges) {
  std::mt19937 rng(1);
  for (int t = 0; t < 500; ++t) {
    Bytes base = RandomPage(t), page = base, d;
    int changes = int(rng() % 40);
    for (int k = 0; k < changes; ++k) {
      size_t at = rng() % kDeltaPageSize, len = 1 + rng() % 64;
      for (size_t i = at; i < std::min(at + len, kDeltaPageSize); ++i) page[i] = uint8_t(rng());
    }
    size_t n = EncodeDelta(base, page, kDeltaPageSize, &d);
    if (base == page) {
      EXPECT_EQ(n, 0u);
      continue;
    }
    if (n == 0) continue;  // too many changes for a page-sized delta
    EXPECT_EQ(n, d.size());
    EXPECT_TRUE(Apply(base, d) == page) << "trial " << t;
  }
}

TEST(EncodeDelta, EdgesOfThePage) {
  Bytes base = RandomPage(7), page = base, d;
  page[0] ^= 1;
  page[kDeltaPageSize - 1] ^= 1;
  ASSERT_GT(EncodeDelta(base, page, 64, &d), 0u);
  EXPECT_LT(d.size(), 40u);
  EXPECT_TRUE(Apply(base, d) == page);
}

TEST(EncodeDelta, GivesUpPastMaxLenAndLeavesOutAlone) {
  Bytes base = RandomPage(1), page = RandomPage(2), d = {0xaa};
  EXPECT_EQ(EncodeDelta(base, page, 2048, &d), 0u);
  EXPECT_EQ(d, Bytes{0xaa});
  // A delta appends after what *out held.
  Bytes small = base;
  small[100] ^= 0xff;
  ASSERT_GT(EncodeDelta(base, small, 2048, &d), 0u);
  EXPECT_EQ(d[0], 0xaa);
  EXPECT_TRUE(Apply(base, ByteView(d).subspan(1)) == small);
}

TEST(ApplyDelta, RejectsMalformedDeltasWithExactErrors) {
  Bytes base(kDeltaPageSize, 1), out(kDeltaPageSize);
  auto err = [&](Bytes d) { return ApplyDelta(base, d, out.data()).message(); };
  EXPECT_EQ(err({5}), "delta: bad or truncated run header at byte 0");
  EXPECT_EQ(err({0x80}), "delta: bad or truncated run header at byte 0");
  EXPECT_EQ(err({0x80, 0x80, 1, 'x'}), "delta: bad or truncated run header at byte 0");
  EXPECT_EQ(err({0, 0}), "delta: empty run at byte 0");
  EXPECT_EQ(err({0, 1, 'x', 0x80, 0x20, 1, 'y'}),
            "delta: run at byte 3 ends at 4098, past the page end");
  EXPECT_EQ(err({0, 4, 'a', 'b'}), "delta: run at byte 0 needs 4 bytes, 2 left");
  // The largest valid run: the whole page.
  Bytes whole = {0, 0x80, 0x20};  // skip 0, take 4096
  whole.resize(3 + kDeltaPageSize, 9);
  EXPECT_EQ(ApplyDelta(base, whole, out.data()).message(), "");
  EXPECT_EQ(out, Bytes(kDeltaPageSize, 9));
}

TEST(ApplyDelta, NeverWritesOutsideThePage) {
  // Every one-byte corruption of a valid delta is either applied inside the page or
  // refused; the guard bytes around the output never change.
  Bytes base = RandomPage(3), page = base, d;
  for (int i = 0; i < 4096; i += 97) page[i] ^= 0x5a;
  ASSERT_GT(EncodeDelta(base, page, 4096, &d), 0u);
  for (size_t i = 0; i < d.size(); ++i) {
    for (uint8_t flip : {0x01, 0x80, 0xff}) {
      Bytes bad = d;
      bad[i] ^= flip;
      Bytes guarded(kDeltaPageSize + 64, 0xee);
      (void)ApplyDelta(base, bad, guarded.data() + 32);
      for (size_t g = 0; g < 32; ++g) {
        ASSERT_EQ(guarded[g], 0xee);
        ASSERT_EQ(guarded[guarded.size() - 1 - g], 0xee);
      }
    }
  }
}

}  // namespace
}  // namespace gangmig::encode
