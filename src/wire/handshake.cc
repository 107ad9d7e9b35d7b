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

void PutHelloHeader(Bytes* out) {
  PutBytes(out, ByteView(kMagic, sizeof(kMagic)));
  PutBE16(out, kProtocolVersion);
  PutBE16(out, kHelloFlags);
}

// Checks magic, version and flags of a ClientHello or ServerHello.
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
  uint16_t flags = LoadBE16(hello.data() + 6);
  if (flags != kHelloFlags) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "%04x", flags);
    return Status::Error(std::string("handshake: unknown flags 0x") + hex + " (protocol version " +
                         std::to_string(kProtocolVersion) + " defines none)");
  }
  return Status::Ok();
}

Status CheckSize(const char* what, ByteView message, size_t expected) {
  if (message.size() == expected) return Status::Ok();
  return Status::Error(std::string("handshake: ") + what + " is " + std::to_string(message.size()) +
                       " bytes (expected " + std::to_string(expected) + ")");
}

Mac Proof(ByteView key, std::string_view label, const Nonce& nonce_c, const Nonce& nonce_s) {
  return HmacSha256Of(key, {AsBytes(label), nonce_c, nonce_s});
}

SessionKeys DeriveKeys(ByteView key, const Nonce& nonce_c, const Nonce& nonce_s) {
  return SessionKeys{ToBytes(Proof(key, kClientToServerLabel, nonce_c, nonce_s)),
                     ToBytes(Proof(key, kServerToClientLabel, nonce_c, nonce_s))};
}

}  // namespace

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

ClientHandshake::ClientHandshake(ByteView key) : ClientHandshake(key, RandomNonce()) {}

ClientHandshake::ClientHandshake(ByteView key, const Nonce& nonce_c)
    : key_(CopyKey(key)), nonce_c_(nonce_c) {}

ClientHandshake::~ClientHandshake() { WipeKey(&key_); }

Bytes ClientHandshake::Hello() const {
  Bytes out;
  out.reserve(kClientHelloSize);
  PutHelloHeader(&out);
  PutBytes(&out, nonce_c_);
  return out;
}

Result<Bytes> ClientHandshake::OnServerHello(ByteView server_hello) {
  GANGMIG_RETURN_IF_ERROR(CheckSize("ServerHello", server_hello, kServerHelloSize));
  GANGMIG_RETURN_IF_ERROR(CheckHelloHeader(server_hello));
  Nonce nonce_s;
  const uint8_t* p = server_hello.data() + kHelloHeaderSize;
  std::copy(p, p + kNonceSize, nonce_s.begin());
  Mac expected = Proof(key_, kServerProofLabel, nonce_c_, nonce_s);
  if (CRYPTO_memcmp(expected.data(), p + kNonceSize, kMacSize) != 0) {
    return Status::Error("handshake: the receiver does not know the shared key (proof mismatch)");
  }
  keys_ = DeriveKeys(key_, nonce_c_, nonce_s);
  return ToBytes(Proof(key_, kClientProofLabel, nonce_c_, nonce_s));
}

// ---- Server --------------------------------------------------------------------------

ServerHandshake::ServerHandshake(ByteView key) : ServerHandshake(key, RandomNonce()) {}

ServerHandshake::ServerHandshake(ByteView key, const Nonce& nonce_s)
    : key_(CopyKey(key)), nonce_s_(nonce_s) {}

ServerHandshake::~ServerHandshake() { WipeKey(&key_); }

Result<Bytes> ServerHandshake::OnClientHello(ByteView client_hello) {
  GANGMIG_RETURN_IF_ERROR(CheckSize("ClientHello", client_hello, kClientHelloSize));
  GANGMIG_RETURN_IF_ERROR(CheckHelloHeader(client_hello));
  const uint8_t* p = client_hello.data() + kHelloHeaderSize;
  std::copy(p, p + kNonceSize, nonce_c_.begin());
  have_hello_ = true;
  Bytes out;
  out.reserve(kServerHelloSize);
  PutHelloHeader(&out);
  PutBytes(&out, nonce_s_);
  PutBytes(&out, Proof(key_, kServerProofLabel, nonce_c_, nonce_s_));
  return out;
}

Status ServerHandshake::OnClientProof(ByteView proof) {
  if (!have_hello_) return Status::Error("handshake: ClientProof before ClientHello");
  GANGMIG_RETURN_IF_ERROR(CheckSize("ClientProof", proof, kClientProofSize));
  Mac expected = Proof(key_, kClientProofLabel, nonce_c_, nonce_s_);
  if (CRYPTO_memcmp(expected.data(), proof.data(), kMacSize) != 0) {
    return Status::Error("handshake: the sender does not know the shared key (proof mismatch)");
  }
  keys_ = DeriveKeys(key_, nonce_c_, nonce_s_);
  return Status::Ok();
}

}  // namespace gangmig::wire
