#include "base/bytes.h"

#include <gtest/gtest.h>

namespace gangmig {
namespace {

TEST(BytesTest, BigEndianRoundTrip) {
  Bytes b;
  PutBE16(&b, 0x1234);
  PutBE32(&b, 0x89abcdef);
  PutBE64(&b, 0x0102030405060708ull);
  ASSERT_EQ(b.size(), 14u);
  EXPECT_EQ(LoadBE16(b.data()), 0x1234);
  EXPECT_EQ(LoadBE32(b.data() + 2), 0x89abcdefu);
  EXPECT_EQ(LoadBE64(b.data() + 6), 0x0102030405060708ull);
  EXPECT_EQ(HexString(ByteView(b.data(), 2)), "1234");
}

}  // namespace
}  // namespace gangmig
