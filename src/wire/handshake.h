// The handshake that opens every gangmig connection: both peers run an ephemeral X25519
// exchange, prove that they hold the shared key file without sending it, and derive one
// record key per direction from both (forward secrecy: a key file stolen later does not
// open recorded sessions).
// The client is the sender (source host), the server the receiver (destination host).
// Pure: the caller moves the fixed-size messages over the socket. Format: docs/WIRE.md.
//
//   client                                   server
//   Hello()             -- ClientHello  -->  OnClientHello()
//   OnServerHello()     <-- ServerHello --   (returns ServerHello)
//   (returns ClientProof) -- ClientProof -->  OnClientProof()
//   keys()                                   keys()
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "wire/wire_format.h"

namespace gangmig::wire {

using Nonce = std::array<uint8_t, kNonceSize>;
// An X25519 private key (32 random bytes; the public key is derived from it).
using EphemeralKey = std::array<uint8_t, kEphemeralKeySize>;

// The two record keys of a session (kSessionKeySize bytes each).
struct SessionKeys {
  Bytes c2s;  // sender -> receiver records
  Bytes s2c;  // receiver -> sender records
};

// "zstd, delta" (unknown bits as hex, "none" for 0): for messages.
std::string FeatureNames(uint16_t features);

// Keys must carry at least this many bits an attacker would have to guess.
inline constexpr double kMinKeyBits = 128;
// An upper estimate of a key's entropy in bits (its length and alphabet, capped by its
// Shannon entropy), for refusing guessable keys.
double EstimateKeyBits(ByteView key);
// OK when `key` can serve as the shared key: at least kMinKeySize bytes and an estimated
// kMinKeyBits bits; otherwise an error that says why and how to make a good one.
Status ValidateKey(ByteView key);

// Checks the magic and version at the start of a ClientHello or ServerHello (its first
// kHelloHeaderSize bytes suffice: read them first, so that a peer of another version is
// told so instead of waiting for bytes it will never send).
Status CheckHelloHeader(ByteView hello);
// True when `header` (kHelloHeaderSize bytes) is a gangmig hello of another version: the
// receiver then answers with VersionHeader() before it closes, so that the sender can
// say which versions met (it reads the ServerHello's header first).
bool IsOtherVersion(ByteView header);
// magic | this build's version | no features: the answer to a peer of another version.
Bytes VersionHeader();

// A fresh random nonce from the OpenSSL CSPRNG (aborts if the CSPRNG fails).
Nonce RandomNonce();
// A fresh X25519 private key, from the same CSPRNG.
EphemeralKey RandomEphemeralKey();

class ClientHandshake {
 public:
  // REQUIRES: ValidateKey(key).ok(). The key is copied (and wiped on destruction).
  // `offered`: the kFeature* bits this sender can use.
  ClientHandshake(ByteView key, uint16_t offered);
  // Fixed nonce and ephemeral key, for tests and golden vectors only.
  ClientHandshake(ByteView key, uint16_t offered, const Nonce& nonce_c,
                  const EphemeralKey& ephemeral);
  ~ClientHandshake();

  // The ClientHello (kClientHelloSize bytes) to send first.
  Bytes Hello() const;
  // Checks the server's hello and proof; returns the ClientProof to send.
  // REQUIRES: server_hello.size() == kServerHelloSize (checked; an error otherwise).
  Result<Bytes> OnServerHello(ByteView server_hello);
  // REQUIRES: OnServerHello() succeeded.
  const SessionKeys& keys() const { return keys_; }
  // The features of this session (a subset of `offered`). REQUIRES: as keys().
  uint16_t agreed() const { return agreed_; }

 private:
  Bytes key_;
  Nonce nonce_c_;
  EphemeralKey ephemeral_;  // private; wiped once used
  EphemeralKey public_c_;
  uint16_t offered_;
  uint16_t agreed_ = 0;
  SessionKeys keys_;
};

class ServerHandshake {
 public:
  // REQUIRES: ValidateKey(key).ok(). The key is copied (and wiped on destruction).
  // `supported`: the kFeature* bits this receiver accepts.
  ServerHandshake(ByteView key, uint16_t supported);
  // Fixed nonce and ephemeral key, for tests and golden vectors only.
  ServerHandshake(ByteView key, uint16_t supported, const Nonce& nonce_s,
                  const EphemeralKey& ephemeral);
  ~ServerHandshake();

  // Checks the client's hello; returns the ServerHello (with the server's proof).
  // REQUIRES: client_hello.size() == kClientHelloSize (checked; an error otherwise).
  Result<Bytes> OnClientHello(ByteView client_hello);
  // Checks the client's proof in constant time. Nothing else from the client may be
  // trusted before this returns OK.
  // REQUIRES: OnClientHello() succeeded.
  Status OnClientProof(ByteView proof);
  // REQUIRES: OnClientProof() succeeded.
  const SessionKeys& keys() const { return keys_; }
  // offered & supported: the features of this session. REQUIRES: OnClientHello() succeeded.
  uint16_t agreed() const { return agreed_; }

 private:
  Bytes key_;
  Nonce nonce_s_;
  EphemeralKey ephemeral_;  // private; wiped once used
  EphemeralKey public_s_;
  uint16_t supported_;
  uint16_t offered_ = 0;
  uint16_t agreed_ = 0;
  Nonce nonce_c_{};
  EphemeralKey public_c_{};
  Bytes secret_;  // S, kept from the hello to the proof (wiped on destruction)
  bool have_hello_ = false;
  SessionKeys keys_;
};

}  // namespace gangmig::wire
