// Record tags: ChaCha20-Poly1305 (RFC 8439) as a MAC.
//
// AEAD_CHACHA20_POLY1305 encrypts a plaintext and authenticates it together with some
// associated data (AAD). We give it an empty plaintext and put everything to protect in
// the AAD: be64 seq || be32 body_len || body. What is left is a Wegman-Carter MAC: the
// first ChaCha20 block under (key, nonce) yields a one-time Poly1305 key, and Poly1305
// evaluates AAD || zero padding to 16 bytes || le64 aad_len || le64 0 as a polynomial
// under that key. The 16-byte result is the record's tag. The body is not encrypted (the
// keystream is never applied to anything).
//
// The nonce is 4 zero bytes || be64 seq. It must never repeat under one key, since two
// messages under the same one-time Poly1305 key would let an observer forge: it does not,
// because seq counts up from 0 per direction, and every connection and direction has
// its own key (handshake.cc). 2^64 records would wrap it; at 1 ns per record that is
// five centuries. The same seq also sits in the AAD, so the MAC input is exactly that
// of protocol version 1 and the tag binds order and length as before (record.cc).
//
// Why not HMAC-SHA256 any more: Poly1305 is a few multiply-adds per 16 bytes and
// OpenSSL vectorises it; on the development host (AMD EPYC with SHA-NI and AVX-512,
// OpenSSL 3.0) records of 64 KiB to 1 MiB are tagged at ~6.5 GB/s against ~1.5 GB/s for
// HMAC-SHA256 (one core, the other busy; 4 KiB records: ~4 against ~1.6). The price is a
// weaker, length-dependent bound: a forgery succeeds with probability at most n / 2^102
// for a message of n 16-byte blocks (RFC 8439, section 4), about 2^-86 per try for the
// largest record, and one failed try ends the session.
//
// The cipher context is keyed once, in the constructor (all allocation happens there).
// Each tag then re-initialises the context with just the new nonce, which resets the AAD
// and length counters and derives the next one-time key, feeds the AAD in two pieces
// (the sequence number, then the record's bytes where they lie), finishes and reads the
// tag. As in hmac.cc, OpenSSL failures can only mean a broken installation
// (the algorithm is built in and every argument is valid), so they abort.
#include "wire/record_mac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "wire/openssl_check.h"

namespace gangmig::wire {
namespace {

constexpr size_t kChaChaKeySize = 32;
static_assert(kSessionKeySize == kChaChaKeySize, "session keys are ChaCha20 keys");
static_assert(kRecordTagSize == 16, "the tag is Poly1305's whole output");
static_assert(kRecordNonceSize == 12, "RFC 8439 nonces are 96 bits");

constexpr char kAlgorithm[] = "ChaCha20-Poly1305 record MAC";

EVP_CIPHER_CTX* NewKeyedContext(ByteView key) {
  if (key.size() != kChaChaKeySize) {
    std::fprintf(stderr, "gangmig: record key is %zu bytes (need %zu)\n", key.size(),
                 kChaChaKeySize);
    std::abort();
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) OpenSslDie(kAlgorithm, "EVP_CIPHER_CTX_new");
  OpenSslCheck(kAlgorithm,
               EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(), nullptr),
               "EVP_EncryptInit_ex (key)");
  return ctx;
}

// 4 zero bytes || be64 seq.
std::array<uint8_t, kRecordNonceSize> Nonce(uint64_t seq) {
  std::array<uint8_t, kRecordNonceSize> n{};
  for (size_t i = kRecordNonceSize; i > 4; i--, seq >>= 8) n[i - 1] = uint8_t(seq);
  return n;
}

void AddAad(EVP_CIPHER_CTX* ctx, const uint8_t* p, size_t n) {
  int len = 0;
  OpenSslCheck(kAlgorithm, EVP_EncryptUpdate(ctx, nullptr, &len, p, int(n)),
               "EVP_EncryptUpdate (AAD)");
}

}  // namespace

RecordMac::RecordMac(ByteView key) : ctx_(NewKeyedContext(key)) {}

RecordMac::~RecordMac() { EVP_CIPHER_CTX_free(ctx_); }

RecordTag RecordMac::Of(uint64_t seq, ByteView header_and_body) {
  std::array<uint8_t, kRecordNonceSize> nonce = Nonce(seq);
  OpenSslCheck(kAlgorithm, EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, nonce.data()),
               "EVP_EncryptInit_ex (nonce)");
  AddAad(ctx_, nonce.data() + 4, 8);  // be64 seq, the nonce's last 8 bytes
  AddAad(ctx_, header_and_body.data(), header_and_body.size());
  uint8_t none[1];
  int len = 0;
  OpenSslCheck(kAlgorithm, EVP_EncryptFinal_ex(ctx_, none, &len), "EVP_EncryptFinal_ex");
  RecordTag tag;
  OpenSslCheck(kAlgorithm,
               EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, int(tag.size()), tag.data()),
               "EVP_CTRL_AEAD_GET_TAG");
  return tag;
}

bool RecordMac::Verify(uint64_t seq, ByteView header_and_body, ByteView tag) {
  RecordTag want = Of(seq, header_and_body);
  return tag.size() == want.size() && CRYPTO_memcmp(want.data(), tag.data(), want.size()) == 0;
}

}  // namespace gangmig::wire
