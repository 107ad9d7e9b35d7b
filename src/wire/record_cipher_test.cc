#include "wire/record_cipher.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string>

namespace gangmig::wire {
namespace {

const Bytes kKey1 = [] {  // 80 81 ... 9f
  Bytes k(32);
  for (size_t i = 0; i < k.size(); i++) k[i] = uint8_t(0x80 + i);
  return k;
}();

Bytes Header(size_t len) {
  Bytes h;
  PutBE32(&h, uint32_t(len));
  return h;
}

Bytes Pattern(size_t n, uint8_t mul, uint8_t shift) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(i * mul + (shift ? i >> shift : 0));
  return b;
}

struct Sealed {
  std::string ciphertext;  // hex
  std::string tag;         // hex
};

Sealed SealCopy(RecordCipher* c, uint64_t seq, ByteView body) {
  Bytes b(body.begin(), body.end());
  RecordTag tag = c->Seal(seq, Header(b.size()), b.data(), b.size());
  return {HexString(b), HexString(tag)};
}

// Expected values computed outside this code base with the AESGCM class of Python's
// `cryptography` package (48.0, OpenSSL-backed): encrypt(4 zero bytes || be64 seq, body,
// be32 len).
TEST(WireRecordCipher, KnownAnswers) {
  RecordCipher c1(kKey1);
  Sealed a = SealCopy(&c1, 0, Bytes{0x00});
  EXPECT_EQ(a.ciphertext, "77");
  EXPECT_EQ(a.tag, "0c445359c4a0e76c164302c9c496c082");
  Sealed b = SealCopy(&c1, 7, AsBytes("QEVM"));
  EXPECT_EQ(b.ciphertext, "5f6d9552");
  EXPECT_EQ(b.tag, "53808f2fa5139f84605c6b21949cf03f");

  Bytes key2(32);
  for (size_t i = 0; i < key2.size(); i++) key2[i] = uint8_t(i);
  RecordCipher c2(key2);
  Sealed c = SealCopy(&c2, 0x0102030405060708, Pattern(101, 7, 0));
  EXPECT_EQ(c.ciphertext.substr(0, 32), "04566b1bc1c223af3ba0bba24a3c5b99");
  EXPECT_EQ(c.tag, "eb4d50f66e54334001fca74a3f4e60f0");

  RecordCipher c3(Bytes(32, 0x42));
  Sealed d = SealCopy(&c3, (uint64_t{1} << 63) + 5, Pattern(70000, 31, 8));
  EXPECT_EQ(d.ciphertext.substr(0, 32), "94c7d6865f08e7b73b13474b2aebe27a");
  EXPECT_EQ(d.tag, "19c33f9de3d539ba8af9c7b74ada7015");
}

// The reference: OpenSSL's EVP AES-256-GCM, step by step (whichever implementation this
// build uses must produce the same bytes).
Sealed OpenSslSeal(ByteView key, uint64_t seq, ByteView body) {
  Bytes iv(4, 0);
  PutBE64(&iv, seq);
  Bytes header = Header(body.size()), out(body.size() + 16);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  RecordTag tag{};
  int n = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), iv.data()), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, nullptr, &n, header.data(), int(header.size())), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &n, body.data(), int(body.size())), 1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx, out.data() + n, &n), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(tag.size()), tag.data()), 1);
  EVP_CIPHER_CTX_free(ctx);
  out.resize(body.size());
  return {HexString(out), HexString(tag)};
}

// Every length up to 600 (all partial blocks, the vector code's block and lane
// boundaries), then random lengths up to a maximal record, at random sequence numbers:
// same bytes as OpenSSL, and each opens back to the body.
TEST(WireRecordCipher, EqualsOpenSslOnManyLengthsAndOpens) {
  std::mt19937_64 rng(20261202);
  Bytes data(kMaxRecordBody + 8);
  for (auto& b : data) b = uint8_t(rng());
  Bytes key(32);
  for (auto& b : key) b = uint8_t(rng());
  RecordCipher sealer(key), opener(key);
  auto check = [&](size_t len, size_t offset, uint64_t seq) {
    ByteView body(data.data() + offset, len);
    Sealed want = OpenSslSeal(key, seq, body);
    Bytes b(body.begin(), body.end());
    RecordTag tag = sealer.Seal(seq, Header(len), b.data(), len);
    ASSERT_EQ(HexString(tag), want.tag) << "length " << len << " seq " << seq;
    ASSERT_EQ(HexString(b), want.ciphertext) << "length " << len;
    Bytes plain(len);
    ASSERT_TRUE(opener.Open(seq, Header(len), b.data(), len, plain.data(), tag));
    ASSERT_TRUE(std::equal(plain.begin(), plain.end(), body.begin())) << "length " << len;
  };
  for (size_t len = 1; len <= 600; len++) check(len, len % 7, rng());
  for (int i = 0; i < 40; i++) {
    size_t len = 1 + rng() % kMaxRecordBody;
    check(len, rng() % (data.size() - len + 1), i < 20 ? uint64_t(i) : rng());
  }
  EXPECT_FALSE(RecordCipher::Implementation().empty());
}

TEST(WireRecordCipher, CiphertextHidesTheBody) {
  const std::string secret = "root_password=correct horse battery staple";
  Bytes b(secret.begin(), secret.end());
  RecordCipher c(kKey1);
  (void)c.Seal(0, Header(b.size()), b.data(), b.size());
  std::string wire(b.begin(), b.end());
  EXPECT_EQ(wire.find("root_password"), std::string::npos);
  EXPECT_EQ(wire.find("horse"), std::string::npos);
}

// Open accepts only the exact (seq, length, ciphertext, tag) that was sealed.
TEST(WireRecordCipher, OpenRefusesEveryChange) {
  const Bytes body = Pattern(64, 5, 0);
  RecordCipher c(kKey1);
  Bytes ct = body;
  const RecordTag tag = c.Seal(1, Header(ct.size()), ct.data(), ct.size());
  Bytes plain(ct.size());
  EXPECT_TRUE(c.Open(1, Header(ct.size()), ct.data(), ct.size(), plain.data(), tag));
  EXPECT_TRUE(plain == body);
  EXPECT_FALSE(c.Open(0, Header(ct.size()), ct.data(), ct.size(), plain.data(), tag));
  EXPECT_FALSE(
      c.Open(uint64_t{1} << 32 | 1, Header(ct.size()), ct.data(), ct.size(), plain.data(), tag));
  EXPECT_FALSE(c.Open(1, Header(ct.size() + 1), ct.data(), ct.size(), plain.data(), tag));
  Bytes other_key = kKey1;
  other_key[31] ^= 1;
  EXPECT_FALSE(
      RecordCipher(other_key).Open(1, Header(ct.size()), ct.data(), ct.size(), plain.data(), tag));
  for (size_t i = 0; i < ct.size(); i++) {
    Bytes changed = ct;
    changed[i] ^= 0x40;
    EXPECT_FALSE(c.Open(1, Header(ct.size()), changed.data(), changed.size(), plain.data(), tag))
        << "byte " << i;
  }
  for (size_t i = 0; i < tag.size(); i++) {
    RecordTag bad = tag;
    bad[i] ^= 0x01;
    EXPECT_FALSE(c.Open(1, Header(ct.size()), ct.data(), ct.size(), plain.data(), bad)) << i;
  }
  EXPECT_FALSE(
      c.Open(1, Header(ct.size()), ct.data(), ct.size(), plain.data(), ByteView(tag).first(15)));
}

// Each record depends on the key, seq and bytes only, not on earlier calls.
TEST(WireRecordCipher, RecordsDoNotDependOnEarlierCalls) {
  const Bytes body = Pattern(300, 13, 0);
  RecordCipher fresh(kKey1);
  Sealed want = SealCopy(&fresh, 5, body);
  RecordCipher used(kKey1);
  (void)SealCopy(&used, 9, Pattern(5000, 3, 2));
  Bytes junk(10);
  RecordTag none{};
  (void)used.Open(2, Header(10), junk.data(), 10, junk.data(), none);
  Sealed again = SealCopy(&used, 5, body);
  EXPECT_EQ(again.ciphertext, want.ciphertext);
  EXPECT_EQ(again.tag, want.tag);
}

TEST(WireRecordCipherDeathTest, KeyOfTheWrongSizeAborts) {
  EXPECT_DEATH(RecordCipher c(Bytes(16, 1)), "record key is 16 bytes \\(need 32\\)");
}

}  // namespace
}  // namespace gangmig::wire
