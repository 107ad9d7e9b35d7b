// Golden vectors: a fixed key and fixed nonces through the handshake, then one c2s
// record holding a DATA, a PAGE and a REF frame. Any change of the wire format changes
// these bytes; docs/WIRE.md quotes the same values as test vectors. They were also checked
// against an independent implementation written from the spec: Python's hmac module for
// the handshake, and for the record tag the ChaCha20Poly1305 class of Python's
// `cryptography` package (protocol version 3).
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
  ClientHandshake client(AsBytes(key), Counting(0x00));
  ServerHandshake server(AsBytes(key), Counting(0x80));

  Bytes client_hello = client.Hello();
  Result<Bytes> server_hello = server.OnClientHello(client_hello);
  ASSERT_TRUE(server_hello.ok());
  Result<Bytes> client_proof = client.OnServerHello(*server_hello);
  ASSERT_TRUE(client_proof.ok());
  ASSERT_TRUE(server.OnClientProof(*client_proof).ok());

  EXPECT_EQ(HexString(client_hello),
            "47474d4700030000"
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(HexString(*server_hello),
            "47474d4700030000"
            "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
            "01b19cc2cd2130c54fbff750afc82dae4143b4ba153a1facf41ea5e4df8c5db1");
  EXPECT_EQ(HexString(*client_proof),
            "ec57cdeb4775130ebb59ec7d52e2396880f107c86fdcc6208635c9ae864cf70b");
  EXPECT_EQ(HexString(client.keys().c2s),
            "88fc522a12033d4c8477ee1689fe66dd8a4fe9dc4ad37ef796f3415c8563309d");
  EXPECT_EQ(HexString(client.keys().s2c),
            "57a82f9c634fe07dec554561944742e0cd251504a3dd425c42a349f60175f3c3");

  Bytes body;
  AppendData(&body, 7, 0, AsBytes("QEVM"));
  AppendPage(&body, 7, 0, Bytes(kPageSize, 0xa5));
  AppendRef(&body, 7, 0, 0);
  RecordSealer sealer(client.keys().c2s);
  Bytes record;
  sealer.Seal(body, &record);

  // clang-format off
  const std::string expected =
      "00001018"                              // body_len 4120
      "02" "0007" "00" "00000004" "5145564d"  // DATA vm 7 channel 0 "QEVM"
      "03" "0007" "00" +                      // PAGE vm 7 channel 0, then 4096 x a5
      Repeat("a5", kPageSize) +
      "04" "0007" "00" "00000000"             // REF vm 7 channel 0 page 0
      "5422af8412cd60fae7bfaa8da377d87c";     // tag (record 0 under c2s)
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
