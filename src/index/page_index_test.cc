#include "index/page_index.h"

#include <gtest/gtest.h>

namespace gangmig::index {
namespace {

Bytes Page(uint8_t fill, size_t poke = 0, uint8_t poke_value = 0) {
  Bytes p(kPageSize, fill);
  p[poke] = poke_value ? poke_value : fill;
  return p;
}

TEST(PageIndexTest, KnownSha256) {
  Fingerprinter fp;
  Bytes zero(kPageSize, 0);
  // sha256 of 4096 zero bytes (computed with sha256sum).
  EXPECT_EQ(HexString(fp.Of(zero).bytes),
            "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");
}

TEST(PageIndexTest, SameContentSameIdDifferentContentNewId) {
  Fingerprinter fp;
  PageIndex index;
  auto a = index.FindOrInsert(fp.Of(Page(1)));
  auto b = index.FindOrInsert(fp.Of(Page(2)));
  auto a2 = index.FindOrInsert(fp.Of(Page(1)));
  auto c = index.FindOrInsert(fp.Of(Page(1, 4095, 9)));  // differs in the last byte only
  EXPECT_TRUE(a.inserted);
  EXPECT_TRUE(b.inserted);
  EXPECT_FALSE(a2.inserted);
  EXPECT_TRUE(c.inserted);
  EXPECT_EQ(a.id, 0u);
  EXPECT_EQ(b.id, 1u);
  EXPECT_EQ(a2.id, 0u);
  EXPECT_EQ(c.id, 2u);
  EXPECT_EQ(index.size(), 3u);
}

TEST(PageIndexTest, StoreKeepsPagesAcrossSlabs) {
  PageStore store;
  for (int i = 0; i < 600; ++i) {
    Bytes p(kPageSize, uint8_t(i));
    p[0] = uint8_t(i >> 8);
    ASSERT_EQ(store.Add(p), uint32_t(i));
  }
  for (int i = 0; i < 600; ++i) {
    ByteView p = store.Get(i);
    ASSERT_EQ(p[0], uint8_t(i >> 8));
    ASSERT_EQ(p[100], uint8_t(i));
  }
  EXPECT_EQ(store.size(), 600u);
}

}  // namespace
}  // namespace gangmig::index
