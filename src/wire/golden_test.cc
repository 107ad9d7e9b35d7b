// Golden vectors: a fixed key, fixed nonces and fixed ephemeral X25519 keys through the
// handshake, then one c2s record holding a DATA, a PAGE, a REF and a DELTA frame. Any
// change of the wire format changes these bytes; docs/WIRE.md quotes the same values as
// test vectors. They were computed independently from the spec, with Python's hmac
// module and the X25519PrivateKey and AESGCM classes of Python's `cryptography` package
// (48.0; protocol version 5, both ends offering zstd and delta). Version 6 changed
// only the version field of the hellos (the transcript does not hold it), so only those
// two bytes differ from the values computed for version 5.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>

#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/record.h"

namespace gangmig::wire {
namespace {

// The features the vectors were computed with (zstd and delta; the cache came later).
constexpr uint16_t kGoldenFeatures = kFeatureZstd | kFeatureDelta;

Nonce Counting(uint8_t first) {
  Nonce n;
  for (size_t i = 0; i < n.size(); i++) n[i] = uint8_t(first + i);
  return n;
}

std::string Repeat(std::string_view s, size_t n) {
  std::string r;
  for (size_t i = 0; i < n; i++) r += s;
  return r;
}

TEST(WireGolden, HandshakeAndFirstRecord) {
  const std::string key = "gangmig test key 0123456789abcdef";  // 33 bytes
  ClientHandshake client(AsBytes(key), kGoldenFeatures, Counting(0x00), Counting(0x40));
  ServerHandshake server(AsBytes(key), kGoldenFeatures, Counting(0x80), Counting(0xc0));

  Bytes client_hello = client.Hello();
  Result<Bytes> server_hello = server.OnClientHello(client_hello);
  ASSERT_TRUE(server_hello.ok());
  Result<Bytes> client_proof = client.OnServerHello(*server_hello);
  ASSERT_TRUE(client_proof.ok());
  ASSERT_TRUE(server.OnClientProof(*client_proof).ok());

  EXPECT_EQ(HexString(client_hello),
            "47474d4700060003"
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"    // nonce_c
            "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a");  // e_c
  EXPECT_EQ(HexString(*server_hello),
            "47474d4700060003"
            "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"    // nonce_s
            "dc2cca31e8e43bbd91dff7e475cca3347eb478107d5bd765aba4ae4a30c35d44"    // e_s
            "9d03c07213e6c1b564b18b6cc52ad4e526b650b7d0d8a2d0e2468e076da4ab82");  // proof_s
  EXPECT_EQ(HexString(*client_proof),
            "d09e29b7c0e81d4ad907019529a0fe72d29fbe2048abc90c82657b47fe032f8c");
  EXPECT_EQ(HexString(client.keys().c2s),
            "c9ca1ad657e8f1794386ef803ec9f9bd7ca17f857cb496c15e8d54cf9b6d93a9");
  EXPECT_EQ(HexString(client.keys().s2c),
            "e975eae47d958f53aea88d999ebea4069b9188e3e0057880a639b91fa9f0126b");
  EXPECT_EQ(server.keys().c2s, client.keys().c2s);
  EXPECT_EQ(server.keys().s2c, client.keys().s2c);
  EXPECT_EQ(client.agreed(), kGoldenFeatures);

  Bytes body;
  AppendData(&body, 7, 0, AsBytes("QEVM"));
  AppendPage(&body, 7, 0, Bytes(kPageSize, 0xa5));
  AppendRef(&body, 7, 0, 0);
  const uint8_t delta[] = {16, 4, 'g', 'a', 'n', 'g'};  // keep 16 bytes, then "gang"
  AppendDelta(&body, 7, 0, 0, ByteView(delta, sizeof(delta)));
  RecordSealer sealer(client.keys().c2s);
  Bytes record;
  sealer.Seal(body, &record);

  // The body in clear, as the frames spell it:
  // clang-format off
  const std::string plain =
      "02" "0007" "00" "00000004" "5145564d"  // DATA vm 7 channel 0 "QEVM"
      "03" "0007" "00" +                      // PAGE vm 7 channel 0, then 4096 x a5
      Repeat("a5", kPageSize) +
      "04" "0007" "00" "00000000"             // REF vm 7 channel 0 page 0
      "08" "0007" "00" "00000000" "0006"      // DELTA vm 7 channel 0 base 0, 6 bytes:
      "1004" "67616e67";                      //   skip 16, take 4: "gang"
  // clang-format on
  ASSERT_EQ(HexString(body), plain);
  // On the wire: the length, the ciphertext (4136 bytes; its first 32 and its SHA-256
  // here), the tag.
  std::string hex = HexString(record);
  ASSERT_EQ(record.size(), kRecordOverhead + body.size());
  EXPECT_EQ(hex.substr(0, 8), "00001028");  // body_len 4136
  EXPECT_EQ(hex.substr(8, 64), "22f83a3c396daa8364964530a401385b51857f53aac7b5b132fed42b2b14ba60");
  uint8_t digest[32];
  SHA256(record.data() + 4, body.size(), digest);
  EXPECT_EQ(HexString(ByteView(digest, sizeof(digest))),
            "22d26ef46dc034aa672e64d9985546424cfac67dcaeac15f64e85931c2984b75");
  EXPECT_EQ(hex.substr(hex.size() - 32), "2a66e98ca14e5d194142a834e4a37760");  // tag
  EXPECT_EQ(hex.find(Repeat("a5", 16)), std::string::npos);  // the page is not in clear

  RecordOpener opener(server.keys().c2s);
  opener.Feed(record);
  Bytes opened;
  ASSERT_TRUE(*opener.Next(&opened));
  EXPECT_EQ(opened, body);
}

}  // namespace
}  // namespace gangmig::wire
