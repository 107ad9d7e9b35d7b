// The handshake: mutual proof of a shared key, then per-direction record keys.
//
// Both peers hold the same key file K; neither ever sends it. Each side contributes a
// fresh 32-byte random nonce, and each proves knowledge of K by returning an HMAC keyed
// with K over both nonces:
//
//   proof_s = HMAC(K, "gangmig v1 server" || nonce_c || nonce_s)
//   proof_c = HMAC(K, "gangmig v1 client" || nonce_c || nonce_s)
//
// The labels differ, so a proof seen in one role is useless in the other (a man in the
// middle cannot reflect the server's proof back as the client's); the peer's own fresh
// nonce is inside each proof it checks, so an old proof cannot be replayed. The client
// checks proof_s before it answers, so a receiver without the key learns nothing more
// than one HMAC over a nonce it did not choose alone, and the sender never streams
// memory to an impostor. The server checks proof_c with CRYPTO_memcmp before it reads
// a single record.
//
// The record keys are HMACs of the same nonces under two more labels, one per direction,
// so every connection gets fresh keys: records of one session (or of the other direction)
// fail authentication in another.
#include "wire/handshake.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "wire/hmac.h"

namespace gangmig::wire {
namespace {

Bytes CopyKey(ByteView key) { return Bytes(key.begin(), key.end()); }

void WipeKey(Bytes* key) {
  if (!key->empty()) OPENSSL_cleanse(key->data(), key->size());
}

Bytes ToBytes(const Mac& mac) { return Bytes(mac.begin(), mac.end()); }

void PutHelloHeader(Bytes* out, uint16_t features) {
  PutBytes(out, ByteView(kMagic, sizeof(kMagic)));
  PutBE16(out, kProtocolVersion);
  PutBE16(out, features);
}

uint16_t HelloFeatures(ByteView hello) { return LoadBE16(hello.data() + 6); }

// Checks magic and version of a ClientHello or ServerHello.
// REQUIRES: hello.size() >= kHelloHeaderSize
Status CheckHelloHeader(ByteView hello) {
  if (std::memcmp(hello.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Error("handshake: bad magic (not a gangmig peer)");
  }
  uint16_t version = LoadBE16(hello.data() + 4);
  if (version != kProtocolVersion) {
    return Status::Error("handshake: unsupported protocol version " + std::to_string(version) +
                         " (this build speaks " + std::to_string(kProtocolVersion) + ")");
  }
  return Status::Ok();
}

Status CheckSize(const char* what, ByteView message, size_t expected) {
  if (message.size() == expected) return Status::Ok();
  return Status::Error(std::string("handshake: ") + what + " is " + std::to_string(message.size()) +
                       " bytes (expected " + std::to_string(expected) + ")");
}

// What both ends saw of the hellos besides the nonces: be16 offered | be16 agreed. It is
// inside every proof and key, so a man in the middle who changes either set (to take
// compression away, say) makes the proofs fail.
using FeaturePair = std::array<uint8_t, 4>;

FeaturePair Features(uint16_t offered, uint16_t agreed) {
  return {uint8_t(offered >> 8), uint8_t(offered), uint8_t(agreed >> 8), uint8_t(agreed)};
}

Mac Proof(ByteView key, std::string_view label, const Nonce& nonce_c, const Nonce& nonce_s,
          const FeaturePair& f) {
  return HmacSha256Of(key, {AsBytes(label), nonce_c, nonce_s, f});
}

SessionKeys DeriveKeys(ByteView key, const Nonce& nonce_c, const Nonce& nonce_s,
                       const FeaturePair& f) {
  return SessionKeys{ToBytes(Proof(key, kClientToServerLabel, nonce_c, nonce_s, f)),
                     ToBytes(Proof(key, kServerToClientLabel, nonce_c, nonce_s, f))};
}

std::string Hex16(uint16_t v) {
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%04x", v);
  return hex;
}

}  // namespace

std::string FeatureNames(uint16_t features) {
  std::string out;
  auto add = [&](uint16_t bit, const char* name) {
    if (!(features & bit)) return;
    out += (out.empty() ? "" : ", ");
    out += name;
    features &= uint16_t(~bit);
  };
  add(kFeatureZstd, "zstd");
  add(kFeatureDelta, "delta");
  if (features) out += (out.empty() ? "" : ", ") + Hex16(features);
  return out.empty() ? "none" : out;
}

Status ValidateKey(ByteView key) {
  if (key.size() >= kMinKeySize) return Status::Ok();
  return Status::Error("key file: key must be at least " + std::to_string(kMinKeySize) +
                       " bytes (got " + std::to_string(key.size()) + ")");
}

Nonce RandomNonce() {
  Nonce n;
  if (RAND_bytes(n.data(), int(n.size())) != 1) {
    // No entropy means no safe nonce; there is nothing sensible to continue with.
    std::fprintf(stderr, "gangmig: OpenSSL RAND_bytes failed\n");
    std::abort();
  }
  return n;
}

// ---- Client --------------------------------------------------------------------------

ClientHandshake::ClientHandshake(ByteView key, uint16_t offered)
    : ClientHandshake(key, offered, RandomNonce()) {}

ClientHandshake::ClientHandshake(ByteView key, uint16_t offered, const Nonce& nonce_c)
    : key_(CopyKey(key)), nonce_c_(nonce_c), offered_(offered) {}

ClientHandshake::~ClientHandshake() { WipeKey(&key_); }

Bytes ClientHandshake::Hello() const {
  Bytes out;
  out.reserve(kClientHelloSize);
  PutHelloHeader(&out, offered_);
  PutBytes(&out, nonce_c_);
  return out;
}

Result<Bytes> ClientHandshake::OnServerHello(ByteView server_hello) {
  GANGMIG_RETURN_IF_ERROR(CheckSize("ServerHello", server_hello, kServerHelloSize));
  GANGMIG_RETURN_IF_ERROR(CheckHelloHeader(server_hello));
  uint16_t agreed = HelloFeatures(server_hello);
  Nonce nonce_s;
  const uint8_t* p = server_hello.data() + kHelloHeaderSize;
  std::copy(p, p + kNonceSize, nonce_s.begin());
  if (agreed & ~offered_) {
    return Status::Error("handshake: the receiver agreed to features that were not offered (" +
                         FeatureNames(uint16_t(agreed & ~offered_)) + ")");
  }
  FeaturePair f = Features(offered_, agreed);
  Mac expected = Proof(key_, kServerProofLabel, nonce_c_, nonce_s, f);
  if (CRYPTO_memcmp(expected.data(), p + kNonceSize, kMacSize) != 0) {
    return Status::Error("handshake: the receiver does not know the shared key (proof mismatch)");
  }
  agreed_ = agreed;
  keys_ = DeriveKeys(key_, nonce_c_, nonce_s, f);
  return ToBytes(Proof(key_, kClientProofLabel, nonce_c_, nonce_s, f));
}

// ---- Server --------------------------------------------------------------------------

ServerHandshake::ServerHandshake(ByteView key, uint16_t supported)
    : ServerHandshake(key, supported, RandomNonce()) {}

ServerHandshake::ServerHandshake(ByteView key, uint16_t supported, const Nonce& nonce_s)
    : key_(CopyKey(key)), nonce_s_(nonce_s), supported_(supported) {}

ServerHandshake::~ServerHandshake() { WipeKey(&key_); }

Result<Bytes> ServerHandshake::OnClientHello(ByteView client_hello) {
  GANGMIG_RETURN_IF_ERROR(CheckSize("ClientHello", client_hello, kClientHelloSize));
  GANGMIG_RETURN_IF_ERROR(CheckHelloHeader(client_hello));
  const uint8_t* p = client_hello.data() + kHelloHeaderSize;
  std::copy(p, p + kNonceSize, nonce_c_.begin());
  offered_ = HelloFeatures(client_hello);
  // Bits this build does not know are simply not agreed: that is what lets a newer
  // sender offer more than an older receiver understands.
  agreed_ = uint16_t(offered_ & supported_ & kFeaturesKnown);
  have_hello_ = true;
  Bytes out;
  out.reserve(kServerHelloSize);
  PutHelloHeader(&out, agreed_);
  PutBytes(&out, nonce_s_);
  PutBytes(&out, Proof(key_, kServerProofLabel, nonce_c_, nonce_s_, Features(offered_, agreed_)));
  return out;
}

Status ServerHandshake::OnClientProof(ByteView proof) {
  if (!have_hello_) return Status::Error("handshake: ClientProof before ClientHello");
  GANGMIG_RETURN_IF_ERROR(CheckSize("ClientProof", proof, kClientProofSize));
  FeaturePair f = Features(offered_, agreed_);
  Mac expected = Proof(key_, kClientProofLabel, nonce_c_, nonce_s_, f);
  if (CRYPTO_memcmp(expected.data(), proof.data(), kMacSize) != 0) {
    return Status::Error("handshake: the sender does not know the shared key (proof mismatch)");
  }
  keys_ = DeriveKeys(key_, nonce_c_, nonce_s_, f);
  return Status::Ok();
}

}  // namespace gangmig::wire
