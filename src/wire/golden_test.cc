// Golden vectors: a fixed key and fixed nonces through the handshake, then one c2s
// record holding a DATA, a PAGE, a REF and a DELTA frame. Any change of the wire format changes
// these bytes; docs/WIRE.md quotes the same values as test vectors. They were also checked
// against an independent implementation written from the spec: Python's hmac module for
// the handshake, and for the record tag the ChaCha20Poly1305 class of Python's
// `cryptography` package (protocol version 4, both ends offering zstd and delta).
#include <gtest/gtest.h>

#include <string>

#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/record.h"

namespace gangmig::wire {
namespace {

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
  ClientHandshake client(AsBytes(key), kFeaturesKnown, Counting(0x00));
  ServerHandshake server(AsBytes(key), kFeaturesKnown, Counting(0x80));

  Bytes client_hello = client.Hello();
  Result<Bytes> server_hello = server.OnClientHello(client_hello);
  ASSERT_TRUE(server_hello.ok());
  Result<Bytes> client_proof = client.OnServerHello(*server_hello);
  ASSERT_TRUE(client_proof.ok());
  ASSERT_TRUE(server.OnClientProof(*client_proof).ok());

  EXPECT_EQ(HexString(client_hello),
            "47474d4700040003"
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(HexString(*server_hello),
            "47474d4700040003"
            "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
            "49c369fcbbbe8d11778878d8d1ff15f706ef3389538a70c9272dc64e6deeb3a0");
  EXPECT_EQ(HexString(*client_proof),
            "e20a2a94dc654d41095617f4eac30d1a406a7643fb6dc9aad2a9c2aebbb6fc7f");
  EXPECT_EQ(HexString(client.keys().c2s),
            "fc615a891664791b26a82e45b63987c6a55f0f0e4cf8e6d95bad2f15a335b279");
  EXPECT_EQ(HexString(client.keys().s2c),
            "33426bf4bd5f918727ae28312f090e1f30e0d75a24fe703835262397a0bf2fcc");
  EXPECT_EQ(client.agreed(), kFeaturesKnown);

  Bytes body;
  AppendData(&body, 7, 0, AsBytes("QEVM"));
  AppendPage(&body, 7, 0, Bytes(kPageSize, 0xa5));
  AppendRef(&body, 7, 0, 0);
  const uint8_t delta[] = {16, 4, 'g', 'a', 'n', 'g'};  // keep 16 bytes, then "gang"
  AppendDelta(&body, 7, 0, 0, ByteView(delta, sizeof(delta)));
  RecordSealer sealer(client.keys().c2s);
  Bytes record;
  sealer.Seal(body, &record);

  // clang-format off
  const std::string expected =
      "00001028"                              // body_len 4136
      "02" "0007" "00" "00000004" "5145564d"  // DATA vm 7 channel 0 "QEVM"
      "03" "0007" "00" +                      // PAGE vm 7 channel 0, then 4096 x a5
      Repeat("a5", kPageSize) +
      "04" "0007" "00" "00000000"             // REF vm 7 channel 0 page 0
      "08" "0007" "00" "00000000" "0006"      // DELTA vm 7 channel 0 base 0, 6 bytes:
      "1004" "67616e67"                       //   skip 16, take 4: "gang"
      "0feb0e39468b1eafcd4465e994e73cf6";     // tag (record 0 under c2s)
  // clang-format on
  EXPECT_EQ(HexString(record), expected);

  RecordOpener opener(server.keys().c2s);
  opener.Feed(record);
  Bytes opened;
  ASSERT_TRUE(*opener.Next(&opened));
  EXPECT_EQ(opened, body);
}

}  // namespace
}  // namespace gangmig::wire
