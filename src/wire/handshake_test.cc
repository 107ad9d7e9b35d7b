#include "wire/handshake.h"

#include <gtest/gtest.h>

#include <string>

#include "wire/hmac.h"

namespace gangmig::wire {
namespace {

const Bytes kKey(32, 0x42);
const Bytes kOtherKey(32, 0x43);

struct Outcome {
  Status client;  // OnServerHello
  Status server;  // OnClientProof (not run when the client refused)
};

Outcome Handshake(ClientHandshake& c, ServerHandshake& s) {
  Result<Bytes> server_hello = s.OnClientHello(c.Hello());
  EXPECT_TRUE(server_hello.ok());
  Result<Bytes> proof = c.OnServerHello(*server_hello);
  if (!proof.ok()) return {proof.status(), Status::Ok()};
  return {Status::Ok(), s.OnClientProof(*proof)};
}

TEST(WireHandshake, SucceedsAndBothSidesAgreeOnKeys) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  Outcome o = Handshake(c, s);
  ASSERT_TRUE(o.client.ok()) << o.client.message();
  ASSERT_TRUE(o.server.ok()) << o.server.message();
  EXPECT_EQ(c.keys().c2s, s.keys().c2s);
  EXPECT_EQ(c.keys().s2c, s.keys().s2c);
  EXPECT_EQ(c.keys().c2s.size(), kSessionKeySize);
  EXPECT_NE(c.keys().c2s, c.keys().s2c);
  EXPECT_EQ(c.Hello().size(), kClientHelloSize);
}

TEST(WireHandshake, EverySessionHasFreshKeys) {
  ClientHandshake c1(kKey, kFeaturesKnown), c2(kKey, kFeaturesKnown);
  ServerHandshake s1(kKey, kFeaturesKnown), s2(kKey, kFeaturesKnown);
  ASSERT_TRUE(Handshake(c1, s1).server.ok());
  ASSERT_TRUE(Handshake(c2, s2).server.ok());
  EXPECT_NE(c1.Hello(), c2.Hello());
  EXPECT_NE(c1.keys().c2s, c2.keys().c2s);
}

TEST(WireHandshake, SenderRefusesReceiverWithoutTheKey) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kOtherKey, kFeaturesKnown);
  Outcome o = Handshake(c, s);
  ASSERT_FALSE(o.client.ok());
  EXPECT_EQ(o.client.message(),
            "handshake: the receiver does not know the shared key (proof mismatch)");
}

TEST(WireHandshake, ReceiverRefusesSenderWithoutTheKey) {
  // An impostor sender skips the check of proof_s and answers with a proof made from
  // the key it has.
  Nonce nc{}, ns{};
  ns[0] = 1;
  ClientHandshake c(kOtherKey, kFeaturesKnown, nc, RandomEphemeralKey());
  ServerHandshake s(kKey, kFeaturesKnown, ns, RandomEphemeralKey());
  ASSERT_TRUE(s.OnClientHello(c.Hello()).ok());
  Mac forged = HmacSha256Of(kOtherKey, {AsBytes(kClientProofLabel), nc, ns});
  Status st = s.OnClientProof(forged);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "handshake: the sender does not know the shared key (proof mismatch)");
}

TEST(WireHandshake, ReplayedClientProofIsRefused) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s1(kKey, kFeaturesKnown), s2(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  ASSERT_TRUE(s2.OnClientHello(hello).ok());
  Result<Bytes> proof = c.OnServerHello(*s1.OnClientHello(hello));
  ASSERT_TRUE(proof.ok());
  ASSERT_TRUE(s1.OnClientProof(*proof).ok());
  Status st = s2.OnClientProof(*proof);  // same client hello, other server nonce
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "handshake: the sender does not know the shared key (proof mismatch)");
}

TEST(WireHandshake, TamperedNoncesAreDetected) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  hello[kHelloHeaderSize] ^= 1;  // a middleman changes nonce_c
  Result<Bytes> sh = s.OnClientHello(hello);
  ASSERT_TRUE(sh.ok());
  Result<Bytes> proof = c.OnServerHello(*sh);
  ASSERT_FALSE(proof.ok());
  EXPECT_EQ(proof.status().message(),
            "handshake: the receiver does not know the shared key (proof mismatch)");

  ClientHandshake c2(kKey, kFeaturesKnown);
  ServerHandshake s2(kKey, kFeaturesKnown);
  Bytes sh2 = *s2.OnClientHello(c2.Hello());
  sh2[kHelloHeaderSize + 5] ^= 1;  // ... or nonce_s
  EXPECT_FALSE(c2.OnServerHello(sh2).ok());
}

TEST(WireHandshake, BadMagic) {
  ServerHandshake s(kKey, kFeaturesKnown);
  std::string http = "GET / HTTP/1.1\r\nHost: example\r\n\r\n.......";
  http.resize(kClientHelloSize, '.');
  ASSERT_EQ(http.size(), kClientHelloSize);
  Result<Bytes> r = s.OnClientHello(AsBytes(http));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "handshake: bad magic (not a gangmig peer)");

  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s2(kKey, kFeaturesKnown);
  Bytes sh = *s2.OnClientHello(c.Hello());
  sh[0] = 'X';
  Result<Bytes> r2 = c.OnServerHello(sh);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(), "handshake: bad magic (not a gangmig peer)");
}

TEST(WireHandshake, UnsupportedVersion) {
  ClientHandshake c(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  hello[4] = 0;
  hello[5] = 1;  // a version 1 peer (HMAC-SHA256 record tags)
  ServerHandshake s(kKey, kFeaturesKnown);
  Result<Bytes> r = s.OnClientHello(hello);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "handshake: unsupported protocol version 1 (this build speaks 6)");

  ServerHandshake s2(kKey, kFeaturesKnown);
  Bytes sh = *s2.OnClientHello(c.Hello());
  sh[4] = 1;
  sh[5] = 0;  // 256
  Result<Bytes> r2 = c.OnServerHello(sh);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(),
            "handshake: unsupported protocol version 256 (this build speaks 6)");
}

TEST(WireHandshake, Version4PeerIsRefused) {
  ClientHandshake c(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  hello[5] = 4;  // a version 4 sender (records authenticated, not encrypted)
  ServerHandshake s(kKey, kFeaturesKnown);
  Result<Bytes> r = s.OnClientHello(hello);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "handshake: unsupported protocol version 4 (this build speaks 6)");
  hello[5] = 5;  // a version 5 sender (VM_OPEN names destinations)
  ServerHandshake s5(kKey, kFeaturesKnown);
  Result<Bytes> r5 = s5.OnClientHello(hello);
  ASSERT_FALSE(r5.ok());
  EXPECT_EQ(r5.status().message(),
            "handshake: unsupported protocol version 5 (this build speaks 6)");
}

TEST(WireHandshake, OtherVersionIsRecognisedByItsHeader) {
  ClientHandshake c(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  EXPECT_FALSE(IsOtherVersion(hello));
  EXPECT_FALSE(IsOtherVersion(VersionHeader()));
  hello[5] = 7;
  EXPECT_TRUE(IsOtherVersion(hello));
  hello[0] = 'X';  // not gangmig at all: refused without an answer
  EXPECT_FALSE(IsOtherVersion(hello));
  EXPECT_EQ(HexString(VersionHeader()), "47474d4700060000");
}

TEST(WireHandshake, FeaturesAreTheIntersection) {
  ClientHandshake c(kKey, kFeatureZstd | kFeatureDelta);
  ServerHandshake s(kKey, kFeatureZstd);
  Outcome o = Handshake(c, s);
  ASSERT_TRUE(o.server.ok()) << o.server.message();
  EXPECT_EQ(c.agreed(), kFeatureZstd);
  EXPECT_EQ(s.agreed(), kFeatureZstd);
  EXPECT_EQ(c.keys().c2s, s.keys().c2s);

  ClientHandshake c2(kKey, 0);
  ServerHandshake s2(kKey, kFeaturesKnown);
  ASSERT_TRUE(Handshake(c2, s2).server.ok());
  EXPECT_EQ(c2.agreed(), 0);
}

TEST(WireHandshake, UnknownFeatureBitsAreNotAgreed) {
  // A newer sender may offer features this build does not know: they are left out.
  ClientHandshake c(kKey, kFeatureZstd | 0x8000);
  ServerHandshake s(kKey, 0xffff);
  ASSERT_TRUE(Handshake(c, s).server.ok());
  EXPECT_EQ(c.agreed(), kFeatureZstd);
  EXPECT_EQ(FeatureNames(uint16_t(kFeatureZstd | kFeatureDelta | 0x8000)), "zstd, delta, 0x8000");
  EXPECT_EQ(FeatureNames(0), "none");
}

TEST(WireHandshake, AlteredFeaturesFailTheProofs) {
  // A man in the middle strips zstd from the sender's offer: the server's proof covers
  // what it saw, so the client refuses it.
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  hello[7] &= uint8_t(~kFeatureZstd);
  Bytes sh = *s.OnClientHello(hello);
  Result<Bytes> r = c.OnServerHello(sh);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "handshake: the receiver does not know the shared key (proof mismatch)");

  // ... or adds a feature to the server's answer.
  ClientHandshake c2(kKey, kFeatureZstd);
  ServerHandshake s2(kKey, kFeaturesKnown);
  Bytes sh2 = *s2.OnClientHello(c2.Hello());
  sh2[7] |= kFeatureDelta;
  Result<Bytes> r2 = c2.OnServerHello(sh2);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(),
            "handshake: the receiver agreed to features that were not offered (delta)");
}

TEST(WireHandshake, WrongMessageSizes) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  hello.pop_back();
  Result<Bytes> r = s.OnClientHello(hello);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "handshake: ClientHello is 71 bytes (expected 72)");

  Status early = s.OnClientProof(Bytes(32));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.message(), "handshake: ClientProof before ClientHello");

  Bytes sh = *s.OnClientHello(c.Hello());
  sh.push_back(0);
  Result<Bytes> r2 = c.OnServerHello(sh);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(), "handshake: ServerHello is 105 bytes (expected 104)");

  Status st = s.OnClientProof(Bytes(31));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "handshake: ClientProof is 31 bytes (expected 32)");
}

TEST(WireHandshake, KeyTooShort) {
  Status st = ValidateKey(Bytes(15, 'k'));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(
      st.message(),
      "key file: key must be at least 16 bytes (got 15); make one with `gangmig keygen FILE`");
  Status empty = ValidateKey(ByteView());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.message(),
            "key file: key must be at least 16 bytes (got 0); make one with `gangmig keygen FILE`");
}

TEST(WireHandshake, GuessableKeysAreRefusedWithTheReason) {
  Status st = ValidateKey(AsBytes("passwordpassword"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "key file: the key looks guessable (about 44 bits by its length and alphabet, 128 "
            "needed): anyone who can connect to the receiver could test guesses offline; make a "
            "random one with `gangmig keygen FILE`");
  for (const char* weak : {"00000000000000000000000000000000000000000000000000000000000000",
                           "abababababababababababababababababababababababababababab",
                           "correcthorsebatterystaple", "1234567890123456789012345678901234"}) {
    EXPECT_FALSE(ValidateKey(AsBytes(weak)).ok()) << weak;
  }
  EXPECT_FALSE(ValidateKey(Bytes(32, 0x42)).ok());
}

TEST(WireHandshake, RandomKeysAsKeygenMakesThemAreAccepted) {
  for (int i = 0; i < 50; ++i) {
    Nonce raw = RandomNonce();  // 32 random bytes, as keygen draws them
    std::string hex = HexString(raw);
    EXPECT_TRUE(ValidateKey(AsBytes(hex)).ok()) << hex;
    EXPECT_GT(EstimateKeyBits(AsBytes(hex)), 200);
    EXPECT_TRUE(ValidateKey(raw).ok());  // raw random bytes, too
  }
}

// Forward secrecy: with the same key file and the same nonces, other ephemeral keys give
// other session keys, so the key file alone never opens a recorded session.
TEST(WireHandshake, SessionKeysDependOnTheEphemeralExchange) {
  Nonce nc{}, ns{};
  ns[0] = 1;
  EphemeralKey a{}, b{};
  a[5] = 9;  // not in the bits X25519 clamps away
  b[5] = 10;
  auto keys = [&](const EphemeralKey& ec, const EphemeralKey& es) {
    ClientHandshake c(kKey, kFeaturesKnown, nc, ec);
    ServerHandshake s(kKey, kFeaturesKnown, ns, es);
    Result<Bytes> proof = c.OnServerHello(*s.OnClientHello(c.Hello()));
    EXPECT_TRUE(proof.ok());
    EXPECT_TRUE(s.OnClientProof(*proof).ok());
    EXPECT_EQ(c.keys().c2s, s.keys().c2s);
    return c.keys().c2s;
  };
  Bytes k1 = keys(a, b);
  EXPECT_NE(keys(b, b), k1);
  EXPECT_NE(keys(a, a), k1);
  EXPECT_EQ(keys(a, b), k1);  // deterministic given everything
}

TEST(WireHandshake, TamperedEphemeralKeysAreDetected) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  hello[kHelloHeaderSize + kNonceSize + 3] ^= 1;  // a middleman changes e_c
  Result<Bytes> sh = s.OnClientHello(hello);
  ASSERT_TRUE(sh.ok());
  Result<Bytes> proof = c.OnServerHello(*sh);
  ASSERT_FALSE(proof.ok());
  EXPECT_EQ(proof.status().message(),
            "handshake: the receiver does not know the shared key (proof mismatch)");

  ClientHandshake c2(kKey, kFeaturesKnown);
  ServerHandshake s2(kKey, kFeaturesKnown);
  Bytes sh2 = *s2.OnClientHello(c2.Hello());
  sh2[kHelloHeaderSize + kNonceSize + 7] ^= 1;  // ... or e_s
  EXPECT_FALSE(c2.OnServerHello(sh2).ok());
}

// A public key that is a low-order point (here 0) makes X25519's result all zeros, known
// to anyone: refused, on both ends.
TEST(WireHandshake, LowOrderEphemeralKeyIsRefused) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  Bytes hello = c.Hello();
  std::fill(hello.begin() + kHelloHeaderSize + kNonceSize, hello.end(), 0);
  Result<Bytes> r = s.OnClientHello(hello);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "handshake: the peer's ephemeral key is invalid (X25519 refused it)");

  ServerHandshake s2(kKey, kFeaturesKnown);
  Bytes sh = *s2.OnClientHello(c.Hello());
  std::fill(sh.begin() + kHelloHeaderSize + kNonceSize,
            sh.begin() + kHelloHeaderSize + kNonceSize + kEphemeralKeySize, 0);
  Result<Bytes> r2 = c.OnServerHello(sh);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(),
            "handshake: the peer's ephemeral key is invalid (X25519 refused it)");
}

TEST(WireHandshake, SecondClientHelloIsRefused) {
  ClientHandshake c(kKey, kFeaturesKnown);
  ServerHandshake s(kKey, kFeaturesKnown);
  ASSERT_TRUE(s.OnClientHello(c.Hello()).ok());
  Result<Bytes> again = s.OnClientHello(c.Hello());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), "handshake: a second ClientHello");
}

}  // namespace
}  // namespace gangmig::wire
