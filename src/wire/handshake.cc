// The handshake: an ephemeral X25519 exchange authenticated by the shared key, then
// per-direction record keys (docs/WIRE.md, section 2, with its threat model).
//
// Both peers hold the same key file K; neither ever sends it. Each side contributes a
// fresh 32-byte random nonce and a fresh X25519 key pair, and sends its public half:
//
//   T   = nonce_c || nonce_s || e_c || e_s || be16 offered || be16 agreed
//   dh  = X25519(own private key, peer's public key)         (the same on both ends)
//   S   = HMAC(K, "gangmig v5 secret" || dh || T)
//   proof_s = HMAC(S, "gangmig v5 server" || T)     proof_c = HMAC(S, "gangmig v5 client" || T)
//   key_c2s = HMAC(S, "gangmig v5 c2s" || T)        key_s2c = HMAC(S, "gangmig v5 s2c" || T)
//
// This is the shape of TLS 1.3's psk_dhe_ke and of Noise's NNpsk0: S needs both K (only
// the two hosts hold it) and dh (only the two ends of this connection can compute it).
//   - Authentication: a peer without K cannot produce a proof, so a man in the middle
//     who swaps e_c or e_s (T is inside every proof) is caught by the first proof it
//     cannot compute. The client checks proof_s before it answers, so it never streams
//     memory to an impostor; the server checks proof_c (constant time) before it reads
//     a single record.
//   - Forward secrecy: the private halves are wiped once dh is computed, and dh cannot
//     be recomputed from the recording. Someone who records a session and steals K
//     later still cannot derive S, so recorded sessions stay closed.
//   - A passive eavesdropper learns nothing to guess K with (every MAC it sees is keyed
//     with S, which hides dh). An active client without K does get one proof_s keyed
//     with a value it can compute from a guess of K: that is why K must be random and
//     long (ValidateKey refuses guessable keys).
//   - The labels differ per role and direction, so a proof seen in one role is useless in
//     the other, and each direction of each connection has its own record key, so the
//     record nonce (the sequence number) never repeats under a key.
#include "wire/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
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

}  // namespace

Status CheckHelloHeader(ByteView hello) {
  if (hello.size() < kHelloHeaderSize) return Status::Error("handshake: hello too short");
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

bool IsOtherVersion(ByteView header) {
  return header.size() >= kHelloHeaderSize &&
         std::memcmp(header.data(), kMagic, sizeof(kMagic)) == 0 &&
         LoadBE16(header.data() + 4) != kProtocolVersion;
}

Bytes VersionHeader() {
  Bytes h;
  PutHelloHeader(&h, 0);
  return h;
}

namespace {

Status CheckSize(const char* what, ByteView message, size_t expected) {
  if (message.size() == expected) return Status::Ok();
  return Status::Error(std::string("handshake: ") + what + " is " + std::to_string(message.size()) +
                       " bytes (expected " + std::to_string(expected) + ")");
}

// What both ends saw of the hellos: T above. It is inside every proof and key, so a man
// in the middle who changes any of it (a public key, or a feature set to take
// compression away) makes the proofs fail.
Bytes Transcript(const Nonce& nonce_c, const Nonce& nonce_s, const EphemeralKey& e_c,
                 const EphemeralKey& e_s, uint16_t offered, uint16_t agreed) {
  Bytes t;
  t.reserve(2 * kNonceSize + 2 * kEphemeralKeySize + 4);
  PutBytes(&t, nonce_c);
  PutBytes(&t, nonce_s);
  PutBytes(&t, e_c);
  PutBytes(&t, e_s);
  PutBE16(&t, offered);
  PutBE16(&t, agreed);
  return t;
}

[[noreturn]] void X25519Die(const char* what) {
  std::fprintf(stderr, "gangmig: OpenSSL X25519 %s failed\n", what);
  std::abort();
}

EVP_PKEY* PrivateKey(const EphemeralKey& priv) {
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size());
  if (k == nullptr) X25519Die("EVP_PKEY_new_raw_private_key");
  return k;
}

EphemeralKey PublicOf(const EphemeralKey& priv) {
  EVP_PKEY* k = PrivateKey(priv);
  EphemeralKey pub;
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(k, pub.data(), &len) != 1 || len != pub.size())
    X25519Die("EVP_PKEY_get_raw_public_key");
  EVP_PKEY_free(k);
  return pub;
}

// X25519(priv, peer). OpenSSL refuses a peer key that yields the all-zero secret (a
// low-order point, which would make dh known to anyone): an error, never a weak key.
Result<Bytes> SharedSecret(const EphemeralKey& priv, const uint8_t* peer_pub) {
  EVP_PKEY* own = PrivateKey(priv);
  EVP_PKEY* peer =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_pub, kEphemeralKeySize);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(own, nullptr);
  Bytes dh(kEphemeralKeySize);
  size_t len = dh.size();
  bool ok = peer != nullptr && ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
            EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
            EVP_PKEY_derive(ctx, dh.data(), &len) == 1 && len == dh.size();
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer);
  EVP_PKEY_free(own);
  if (!ok) {
    OPENSSL_cleanse(dh.data(), dh.size());
    return Status::Error("handshake: the peer's ephemeral key is invalid (X25519 refused it)");
  }
  return dh;
}

Bytes Secret(ByteView key, Bytes* dh, const Bytes& transcript) {
  Bytes s = ToBytes(HmacSha256Of(key, {AsBytes(kSecretLabel), *dh, transcript}));
  WipeKey(dh);
  return s;
}

Mac Proof(ByteView secret, std::string_view label, const Bytes& transcript) {
  return HmacSha256Of(secret, {AsBytes(label), transcript});
}

SessionKeys DeriveKeys(ByteView secret, const Bytes& transcript) {
  return SessionKeys{ToBytes(Proof(secret, kClientToServerLabel, transcript)),
                     ToBytes(Proof(secret, kServerToClientLabel, transcript))};
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
  add(kFeatureCache, "cache");
  if (features) out += (out.empty() ? "" : ", ") + Hex16(features);
  return out.empty() ? "none" : out;
}

// A generous upper estimate of the bits an attacker must guess: the length times the
// bits of the smallest usual alphabet the key's bytes fit in (digits, hex, letters,
// base64, printable, any byte), and never more than the length times the key's own
// Shannon entropy per byte (which catches repetition: "abababab..."). A key that
// `keygen` made (32 random bytes as 64 hex digits) rates ~235 bits; a word or a phrase
// in lower case rates far below 128. It cannot tell a random-looking key that a human
// chose, so the help says to use keygen.
double EstimateKeyBits(ByteView key) {
  if (key.empty()) return 0;
  bool digits = true, hex = true, letters = true, base64 = true, printable = true;
  int counts[256] = {};
  for (uint8_t c : key) {
    counts[c]++;
    bool digit = c >= '0' && c <= '9', lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
    digits = digits && digit;
    hex = hex && (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
    letters = letters && (lower || upper);
    base64 = base64 &&
             (digit || lower || upper || c == '+' || c == '/' || c == '=' || c == '-' || c == '_');
    printable = printable && c >= 0x20 && c < 0x7f;
  }
  double alphabet = digits ? 10 : hex ? 16 : letters ? 52 : base64 ? 64 : printable ? 95 : 256;
  double shannon = 0;
  for (int n : counts) {
    if (n == 0) continue;
    double p = double(n) / double(key.size());
    shannon -= p * std::log2(p);
  }
  return double(key.size()) * std::min(std::log2(alphabet), shannon);
}

Status ValidateKey(ByteView key) {
  if (key.size() < kMinKeySize) {
    return Status::Error("key file: key must be at least " + std::to_string(kMinKeySize) +
                         " bytes (got " + std::to_string(key.size()) +
                         "); make one with "
                         "`gangmig keygen FILE`");
  }
  double bits = EstimateKeyBits(key);
  if (bits < kMinKeyBits) {
    return Status::Error("key file: the key looks guessable (about " + std::to_string(int(bits)) +
                         " bits by its length and alphabet, " + std::to_string(int(kMinKeyBits)) +
                         " needed): anyone who can connect to the receiver could test guesses "
                         "offline; make a random one with `gangmig keygen FILE`");
  }
  return Status::Ok();
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

EphemeralKey RandomEphemeralKey() {
  EphemeralKey k;
  if (RAND_bytes(k.data(), int(k.size())) != 1) {
    std::fprintf(stderr, "gangmig: OpenSSL RAND_bytes failed\n");
    std::abort();
  }
  return k;
}

// ---- Client --------------------------------------------------------------------------

ClientHandshake::ClientHandshake(ByteView key, uint16_t offered)
    : ClientHandshake(key, offered, RandomNonce(), RandomEphemeralKey()) {}

ClientHandshake::ClientHandshake(ByteView key, uint16_t offered, const Nonce& nonce_c,
                                 const EphemeralKey& ephemeral)
    : key_(CopyKey(key)),
      nonce_c_(nonce_c),
      ephemeral_(ephemeral),
      public_c_(PublicOf(ephemeral)),
      offered_(offered) {}

ClientHandshake::~ClientHandshake() {
  WipeKey(&key_);
  OPENSSL_cleanse(ephemeral_.data(), ephemeral_.size());
}

Bytes ClientHandshake::Hello() const {
  Bytes out;
  out.reserve(kClientHelloSize);
  PutHelloHeader(&out, offered_);
  PutBytes(&out, nonce_c_);
  PutBytes(&out, public_c_);
  return out;
}

Result<Bytes> ClientHandshake::OnServerHello(ByteView server_hello) {
  GANGMIG_RETURN_IF_ERROR(CheckSize("ServerHello", server_hello, kServerHelloSize));
  GANGMIG_RETURN_IF_ERROR(CheckHelloHeader(server_hello));
  uint16_t agreed = HelloFeatures(server_hello);
  const uint8_t* p = server_hello.data() + kHelloHeaderSize;
  Nonce nonce_s;
  EphemeralKey public_s;
  std::copy(p, p + kNonceSize, nonce_s.begin());
  std::copy(p + kNonceSize, p + kNonceSize + kEphemeralKeySize, public_s.begin());
  const uint8_t* proof_s = p + kNonceSize + kEphemeralKeySize;
  if (agreed & ~offered_) {
    return Status::Error("handshake: the receiver agreed to features that were not offered (" +
                         FeatureNames(uint16_t(agreed & ~offered_)) + ")");
  }
  auto dh = SharedSecret(ephemeral_, public_s.data());
  OPENSSL_cleanse(ephemeral_.data(), ephemeral_.size());  // forward secrecy: used once
  if (!dh.ok()) return dh.status();
  Bytes t = Transcript(nonce_c_, nonce_s, public_c_, public_s, offered_, agreed);
  Bytes secret = Secret(key_, &*dh, t);
  Mac expected = Proof(secret, kServerProofLabel, t);
  if (CRYPTO_memcmp(expected.data(), proof_s, kMacSize) != 0) {
    WipeKey(&secret);
    return Status::Error("handshake: the receiver does not know the shared key (proof mismatch)");
  }
  agreed_ = agreed;
  keys_ = DeriveKeys(secret, t);
  Bytes proof_c = ToBytes(Proof(secret, kClientProofLabel, t));
  WipeKey(&secret);
  return proof_c;
}

// ---- Server --------------------------------------------------------------------------

ServerHandshake::ServerHandshake(ByteView key, uint16_t supported)
    : ServerHandshake(key, supported, RandomNonce(), RandomEphemeralKey()) {}

ServerHandshake::ServerHandshake(ByteView key, uint16_t supported, const Nonce& nonce_s,
                                 const EphemeralKey& ephemeral)
    : key_(CopyKey(key)),
      nonce_s_(nonce_s),
      ephemeral_(ephemeral),
      public_s_(PublicOf(ephemeral)),
      supported_(supported) {}

ServerHandshake::~ServerHandshake() {
  WipeKey(&key_);
  WipeKey(&secret_);
  OPENSSL_cleanse(ephemeral_.data(), ephemeral_.size());
}

Result<Bytes> ServerHandshake::OnClientHello(ByteView client_hello) {
  GANGMIG_RETURN_IF_ERROR(CheckSize("ClientHello", client_hello, kClientHelloSize));
  GANGMIG_RETURN_IF_ERROR(CheckHelloHeader(client_hello));
  if (have_hello_) return Status::Error("handshake: a second ClientHello");
  const uint8_t* p = client_hello.data() + kHelloHeaderSize;
  std::copy(p, p + kNonceSize, nonce_c_.begin());
  std::copy(p + kNonceSize, p + kNonceSize + kEphemeralKeySize, public_c_.begin());
  offered_ = HelloFeatures(client_hello);
  // Bits this build does not know are simply not agreed: that is what lets a newer
  // sender offer more than an older receiver understands.
  agreed_ = uint16_t(offered_ & supported_ & kFeaturesKnown);
  auto dh = SharedSecret(ephemeral_, public_c_.data());
  OPENSSL_cleanse(ephemeral_.data(), ephemeral_.size());  // forward secrecy: used once
  if (!dh.ok()) return dh.status();
  Bytes t = Transcript(nonce_c_, nonce_s_, public_c_, public_s_, offered_, agreed_);
  secret_ = Secret(key_, &*dh, t);
  have_hello_ = true;
  Bytes out;
  out.reserve(kServerHelloSize);
  PutHelloHeader(&out, agreed_);
  PutBytes(&out, nonce_s_);
  PutBytes(&out, public_s_);
  PutBytes(&out, Proof(secret_, kServerProofLabel, t));
  return out;
}

Status ServerHandshake::OnClientProof(ByteView proof) {
  if (!have_hello_) return Status::Error("handshake: ClientProof before ClientHello");
  GANGMIG_RETURN_IF_ERROR(CheckSize("ClientProof", proof, kClientProofSize));
  if (secret_.empty()) return Status::Error("handshake: ClientProof after the handshake ended");
  Bytes t = Transcript(nonce_c_, nonce_s_, public_c_, public_s_, offered_, agreed_);
  Mac expected = Proof(secret_, kClientProofLabel, t);
  if (CRYPTO_memcmp(expected.data(), proof.data(), kMacSize) != 0) {
    WipeKey(&secret_);
    secret_.clear();
    return Status::Error("handshake: the sender does not know the shared key (proof mismatch)");
  }
  keys_ = DeriveKeys(secret_, t);
  WipeKey(&secret_);
  secret_.clear();
  return Status::Ok();
}

}  // namespace gangmig::wire
