#include "wire/hmac.h"

#include <gtest/gtest.h>

#include <string>

namespace gangmig::wire {
namespace {

std::string Hex(const Mac& m) { return HexString(m); }

// RFC 4231, test cases 1 and 2.
TEST(WireHmac, Rfc4231Vectors) {
  Bytes key1(20, 0x0b);
  EXPECT_EQ(Hex(HmacSha256Of(key1, {AsBytes("Hi There")})),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(
      Hex(HmacSha256Of(AsBytes("Jefe"), {AsBytes("what do ya want "), AsBytes("for nothing?")})),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WireHmac, ReusedContextRestartsFromTheKey) {
  HmacSha256 h(AsBytes("Jefe"));
  for (int i = 0; i < 3; i++) {
    h.Begin();
    h.Update(AsBytes("garbage that Begin must discard"));
    h.Begin();
    h.Update(AsBytes("what do ya want for nothing?"));
    EXPECT_EQ(Hex(h.Finish()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
}

}  // namespace
}  // namespace gangmig::wire
