// Record tags: ChaCha20-Poly1305 (RFC 8439) as a MAC.
//
// AEAD_CHACHA20_POLY1305 encrypts a plaintext and authenticates it together with some
// associated data (AAD). We give it an empty plaintext and put the record's bytes in the
// AAD: be32 body_len || body. What is left is a Wegman-Carter MAC: the first ChaCha20
// block under (key, nonce) yields a one-time Poly1305 key, and Poly1305 evaluates
// AAD || zero padding to 16 bytes || le64 aad_len || le64 0 as a polynomial under that
// key. The 16-byte result is the record's tag. The body is not encrypted (the keystream
// is never applied to anything).
//
// The nonce is 4 zero bytes || be64 seq. It binds the record's position: a record checked
// under another seq is checked under another one-time key, so it fails like any forgery
// (TLS 1.3 binds its record sequence number the same way, through the nonce only). The
// nonce must never repeat under one key, since two messages under the same one-time
// Poly1305 key would let an observer forge: it does not, because seq counts up from 0 per
// direction, and every connection and direction has its own key (handshake.cc). 2^64
// records would wrap it; at 1 ns per record that is five centuries.
//
// Two implementations of the same function, chosen when building (CMake option
// GANGMIG_IPSEC_MB): Intel's Multi-Buffer Crypto for IPsec library (Debian package
// libipsec-mb-dev, x86-64 only), whose Poly1305 uses AVX-512 IFMA where the CPU has it,
// and OpenSSL's EVP interface otherwise. On the development host (AMD EPYC with AVX-512,
// one core, 64 KiB to 1 MiB records) they tag at ~21-23 GB/s and ~6.3 GB/s: the first
// keeps the MAC at about a fifth of the sender's per-page cost, the second made it half
// (docs/BENCHMARKS.md). The tags are identical (record_mac_test.cc checks the build's
// implementation against OpenSSL on 660 lengths up to a maximal record).
//
// The library state is set up once, in the constructor (all allocation happens there).
// Each tag then starts from the key and the new nonce, so it does not depend on earlier
// calls. Failures of either library can only mean a broken installation (the algorithm is
// built in and every argument is valid), so they abort, as in hmac.cc.
#include "wire/record_mac.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "wire/openssl_check.h"

#if GANGMIG_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#else
#include <openssl/evp.h>
#endif

namespace gangmig::wire {
namespace {

constexpr size_t kChaChaKeySize = 32;
static_assert(kSessionKeySize == kChaChaKeySize, "session keys are ChaCha20 keys");
static_assert(kRecordTagSize == 16, "the tag is Poly1305's whole output");
static_assert(kRecordNonceSize == 12, "RFC 8439 nonces are 96 bits");

constexpr char kAlgorithm[] = "ChaCha20-Poly1305 record MAC";

void CheckKeySize(ByteView key) {
  if (key.size() != kChaChaKeySize) {
    std::fprintf(stderr, "gangmig: record key is %zu bytes (need %zu)\n", key.size(),
                 kChaChaKeySize);
    std::abort();
  }
}

// 4 zero bytes || be64 seq.
std::array<uint8_t, kRecordNonceSize> Nonce(uint64_t seq) {
  std::array<uint8_t, kRecordNonceSize> n{};
  for (size_t i = kRecordNonceSize; i > 4; i--, seq >>= 8) n[i - 1] = uint8_t(seq);
  return n;
}

}  // namespace

#if GANGMIG_HAVE_IPSEC_MB

namespace {

[[noreturn]] void IpsecMbDie(const char* what, int err) {
  std::fprintf(stderr, "gangmig: intel-ipsec-mb %s failed (%s): %s\n", what, kAlgorithm,
               err != 0 ? imb_get_strerror(err) : "no manager");
  std::abort();
}

const char* ArchName(IMB_ARCH arch) {
  switch (arch) {
    case IMB_ARCH_NOAESNI:
      return "no AES-NI";
    case IMB_ARCH_SSE:
      return "SSE";
    case IMB_ARCH_AVX:
      return "AVX";
    case IMB_ARCH_AVX2:
      return "AVX2";
    case IMB_ARCH_AVX512:
      return "AVX512";
    default:
      return "unknown";
  }
}

}  // namespace

// The library keeps no copy of the key: it is passed to each call.
struct RecordMac::Impl {
  IMB_MGR* mgr = nullptr;
  IMB_ARCH arch = IMB_ARCH_NONE;
  std::array<uint8_t, kChaChaKeySize> key{};
  chacha20_poly1305_context_data ctx{};

  explicit Impl(ByteView k) {
    CheckKeySize(k);
    std::copy(k.begin(), k.end(), key.begin());
    mgr = alloc_mb_mgr(0);
    if (mgr == nullptr) IpsecMbDie("alloc_mb_mgr", 0);
    init_mb_mgr_auto(mgr, &arch);
    if (int err = imb_get_errno(mgr)) IpsecMbDie("init_mb_mgr_auto", err);
  }
  ~Impl() {
    OPENSSL_cleanse(key.data(), key.size());
    OPENSSL_cleanse(&ctx, sizeof ctx);
    free_mb_mgr(mgr);
  }

  RecordTag Of(uint64_t seq, ByteView aad) {
    std::array<uint8_t, kRecordNonceSize> nonce = Nonce(seq);
    RecordTag tag;
    IMB_CHACHA20_POLY1305_INIT(mgr, key.data(), &ctx, nonce.data(), aad.data(), aad.size());
    IMB_CHACHA20_POLY1305_ENC_FINALIZE(mgr, &ctx, tag.data(), tag.size());
    if (int err = imb_get_errno(mgr)) IpsecMbDie("IMB_CHACHA20_POLY1305", err);
    return tag;
  }
};

std::string RecordMac::Implementation() {
  const std::array<uint8_t, kChaChaKeySize> zero_key{};
  Impl probe(zero_key);
  return std::string("intel-ipsec-mb ") + imb_get_version_str() + ", " + ArchName(probe.arch);
}

#else  // OpenSSL

// OpenSSL copies the key into the context when it is keyed (once). Each tag
// re-initialises the context with just the new nonce, which resets the AAD and length
// counters and derives the next one-time key.
struct RecordMac::Impl {
  EVP_CIPHER_CTX* ctx = nullptr;

  explicit Impl(ByteView key) {
    CheckKeySize(key);
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr) OpenSslDie(kAlgorithm, "EVP_CIPHER_CTX_new");
    OpenSslCheck(kAlgorithm,
                 EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(), nullptr),
                 "EVP_EncryptInit_ex (key)");
  }
  ~Impl() { EVP_CIPHER_CTX_free(ctx); }

  RecordTag Of(uint64_t seq, ByteView aad) {
    std::array<uint8_t, kRecordNonceSize> nonce = Nonce(seq);
    OpenSslCheck(kAlgorithm, EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()),
                 "EVP_EncryptInit_ex (nonce)");
    int len = 0;
    OpenSslCheck(kAlgorithm, EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), int(aad.size())),
                 "EVP_EncryptUpdate (AAD)");
    uint8_t none[1];
    OpenSslCheck(kAlgorithm, EVP_EncryptFinal_ex(ctx, none, &len), "EVP_EncryptFinal_ex");
    RecordTag tag;
    OpenSslCheck(kAlgorithm,
                 EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(tag.size()), tag.data()),
                 "EVP_CTRL_AEAD_GET_TAG");
    return tag;
  }
};

std::string RecordMac::Implementation() { return OpenSSL_version(OPENSSL_VERSION); }

#endif

RecordMac::RecordMac(ByteView key) : impl_(std::make_unique<Impl>(key)) {}

RecordMac::~RecordMac() = default;

RecordTag RecordMac::Of(uint64_t seq, ByteView header_and_body) {
  return impl_->Of(seq, header_and_body);
}

bool RecordMac::Verify(uint64_t seq, ByteView header_and_body, ByteView tag) {
  RecordTag want = Of(seq, header_and_body);
  return tag.size() == want.size() && CRYPTO_memcmp(want.data(), tag.data(), want.size()) == 0;
}

}  // namespace gangmig::wire
