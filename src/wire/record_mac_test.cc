#include "wire/record_mac.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string>

namespace gangmig::wire {
namespace {

std::string Hex(const RecordTag& t) { return HexString(t); }

const Bytes kRfcKey = [] {  // the key of RFC 8439, section 2.8.2: 80 81 ... 9f
  Bytes k(32);
  for (size_t i = 0; i < k.size(); i++) k[i] = uint8_t(0x80 + i);
  return k;
}();

// be32 body_len || body: a record's bytes before its tag.
Bytes HeaderAndBody(ByteView body) {
  Bytes b;
  b.reserve(kRecordHeaderSize + body.size());
  PutBE32(&b, uint32_t(body.size()));
  PutBytes(&b, body);
  return b;
}

Bytes Pattern(size_t n, uint8_t mul, uint8_t shift) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(i * mul + (shift ? i >> shift : 0));
  return b;
}

// Expected tags computed outside this code base with the ChaCha20Poly1305 class of
// Python's `cryptography` package (38.0.4, OpenSSL-backed): encrypt(nonce, b"", aad).
TEST(WireRecordMac, KnownAnswers) {
  RecordMac rfc(kRfcKey);
  EXPECT_EQ(Hex(rfc.Of(0, HeaderAndBody(Bytes{0x00}))), "0717dcaf450c09c03e43bc441e97b08d");
  EXPECT_EQ(Hex(rfc.Of(7, HeaderAndBody(AsBytes("QEVM")))), "0a7e8d37a46fa34a45b87cf9f7d275b1");
  // 4 + 12 = 16 bytes of AAD: no padding.
  EXPECT_EQ(Hex(rfc.Of(3, HeaderAndBody(Pattern(12, 1, 0)))), "fad453e8002f41fa32b5165c4a50e256");

  Bytes key2(32);
  for (size_t i = 0; i < key2.size(); i++) key2[i] = uint8_t(i);
  RecordMac mac2(key2);
  EXPECT_EQ(Hex(mac2.Of(0x0102030405060708, HeaderAndBody(Pattern(101, 7, 0)))),
            "c51e1b05ed794810f443ee3452e7dbc8");

  RecordMac mac3(Bytes(32, 0x42));
  EXPECT_EQ(Hex(mac3.Of((uint64_t{1} << 63) + 5, HeaderAndBody(Pattern(70000, 31, 8)))),
            "e8cd6e6e343aa8283f11bf6a8aa00fd0");
}

// The tag through OpenSSL's EVP interface, step by step as RFC 8439 defines the AEAD:
// the reference for whichever implementation this build uses (record_mac.cc).
RecordTag OpenSslTag(ByteView key, uint64_t seq, ByteView aad) {
  Bytes nonce(4, 0);
  PutBE64(&nonce, seq);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  RecordTag tag{};
  int n = 0;
  uint8_t none[1];
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(), nonce.data()), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, nullptr, &n, aad.data(), int(aad.size())), 1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx, none, &n), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(tag.size()), tag.data()), 1);
  EVP_CIPHER_CTX_free(ctx);
  return tag;
}

// Every length up to 600 (all paddings, the vector code's block and lane boundaries),
// then random lengths up to a maximal record, at random sequence numbers and keys.
TEST(WireRecordMac, EqualsOpenSslOnManyLengths) {
  std::mt19937_64 rng(20261123);
  Bytes data(kRecordHeaderSize + kMaxRecordBody);
  for (auto& b : data) b = uint8_t(rng());
  Bytes key(32);
  for (auto& b : key) b = uint8_t(rng());
  RecordMac mac(key);
  for (size_t len = 1; len <= 600; len++) {
    uint64_t seq = rng();
    ByteView aad(data.data() + (len % 7), len);
    ASSERT_EQ(Hex(mac.Of(seq, aad)), Hex(OpenSslTag(key, seq, aad))) << "length " << len;
  }
  for (int i = 0; i < 60; i++) {
    size_t len = 1 + rng() % data.size();
    size_t offset = rng() % (data.size() - len + 1);
    uint64_t seq = i < 30 ? uint64_t(i) : rng();
    ByteView aad(data.data() + offset, len);
    ASSERT_EQ(Hex(mac.Of(seq, aad)), Hex(OpenSslTag(key, seq, aad)))
        << "length " << len << " offset " << offset << " seq " << seq;
  }
  EXPECT_FALSE(RecordMac::Implementation().empty());
}

// The AEAD vector of RFC 8439, section 2.8.2 (its nonce has a non-zero first word, so it
// cannot go through RecordMac), run through the same sequence of EVP calls as
// record_mac.cc's OpenSSL build: key first, then the nonce by a re-init, the AAD, the plaintext,
// the tag.
TEST(WireRecordMac, Rfc8439AeadVectorThroughTheSameEvpCalls) {
  const Bytes nonce = {0x07, 0x00, 0x00, 0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
  const Bytes aad = {0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7};
  const std::string plaintext =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.";
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ASSERT_NE(ctx, nullptr);
  Bytes ct(plaintext.size());
  RecordTag tag;
  int n = 0, m = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, kRfcKey.data(), nullptr), 1);
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, nullptr, &n, aad.data(), int(aad.size())), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, ct.data(), &n, AsBytes(plaintext).data(), int(ct.size())), 1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx, ct.data() + n, &m), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(tag.size()), tag.data()), 1);
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_EQ(size_t(n + m), plaintext.size());
  EXPECT_EQ(HexString(ct),
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282"
            "fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab3"
            "24e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116");
  EXPECT_EQ(Hex(tag), "1ae10b594f09e26a7e902ecbd0600691");
}

// Each tag starts from the key alone: what was computed before does not matter.
TEST(WireRecordMac, TagsDoNotDependOnEarlierCalls) {
  const Bytes record = HeaderAndBody(Pattern(300, 13, 0));
  RecordMac fresh(kRfcKey);
  const RecordTag want = fresh.Of(5, record);
  RecordMac used(kRfcKey);
  used.Of(9, HeaderAndBody(Pattern(5000, 3, 2)));
  used.Of(0, HeaderAndBody(Bytes{1}));
  EXPECT_EQ(used.Of(5, record), want);
  EXPECT_EQ(used.Of(5, record), want);
}

TEST(WireRecordMac, EveryInputChangesTheTag) {
  const Bytes record = HeaderAndBody(Pattern(64, 5, 0));
  RecordMac mac(kRfcKey);
  const RecordTag base = mac.Of(1, record);
  EXPECT_NE(mac.Of(0, record), base);
  EXPECT_NE(mac.Of(2, record), base);
  EXPECT_NE(mac.Of(uint64_t{1} << 32 | 1, record), base);  // seq beyond the low word
  Bytes other_key = kRfcKey;
  other_key[31] ^= 1;
  EXPECT_NE(RecordMac(other_key).Of(1, record), base);
  for (size_t i = 0; i < record.size(); i++) {
    Bytes changed = record;
    changed[i] ^= 0x40;
    EXPECT_NE(mac.Of(1, changed), base) << "byte " << i;
  }
  EXPECT_NE(mac.Of(1, ByteView(record).first(record.size() - 1)), base);
}

TEST(WireRecordMac, VerifyAcceptsOnlyTheTag) {
  const Bytes record = HeaderAndBody(AsBytes("frames"));
  RecordMac mac(kRfcKey);
  const RecordTag tag = mac.Of(3, record);
  EXPECT_TRUE(mac.Verify(3, record, tag));
  EXPECT_FALSE(mac.Verify(4, record, tag));
  for (size_t i = 0; i < tag.size(); i++) {
    RecordTag bad = tag;
    bad[i] ^= 0x01;
    EXPECT_FALSE(mac.Verify(3, record, bad)) << "byte " << i;
  }
  EXPECT_FALSE(mac.Verify(3, record, ByteView(tag).first(15)));
}

TEST(WireRecordMacDeathTest, KeyOfTheWrongSizeAborts) {
  EXPECT_DEATH(RecordMac mac(Bytes(16, 1)), "record key is 16 bytes \\(need 32\\)");
}

}  // namespace
}  // namespace gangmig::wire
