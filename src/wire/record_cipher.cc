// Record encryption: AES-256-GCM.
//
// Every record body is encrypted and authenticated: an eavesdropper on the link sees
// record lengths and timing, never a byte of guest memory, VM names or socket paths. The
// record's length field is the AEAD's associated data, so a cut or re-framed record
// fails like any forgery. The nonce is 4 zero bytes || be64 seq: it binds the record's
// position (a record checked under another seq fails), and it never repeats under one
// key because seq counts up from 0 per direction and every direction of every
// connection has its own key, derived from that connection's ephemeral X25519 exchange
// (handshake.cc). 2^64 records would wrap it; at 1 ns per record that is five
// centuries. GCM's own limit per key (2^32 invocations with random nonces, 2^39-256
// bits per message) is far beyond any session: bodies are at most 1 MiB.
//
// Why AES-GCM and not ChaCha20-Poly1305 (the MAC of wire v4): on x86-64 servers with
// VAES and VPCLMULQDQ (the hosts that run KVM clusters), intel-ipsec-mb's AES-GCM
// encrypts and authenticates at tens of GB/s per core, faster than ChaCha20 alone
// (docs/BENCHMARKS.md, BM_RecordCipher); OpenSSL's AES-NI GCM is still several GB/s.
//
// Two implementations of the same function, chosen when building (CMake option
// GANGMIG_IPSEC_MB): Intel's Multi-Buffer Crypto for IPsec library (Debian package
// libipsec-mb-dev, x86-64 only) and OpenSSL's EVP interface. The outputs are identical
// (record_cipher_test.cc checks the build's implementation against OpenSSL, both ways,
// on lengths up to a maximal record). Key expansion happens once, in the constructor.
// Failures of either library can only mean a broken installation (every argument is
// valid), so they abort, as in hmac.cc.
#include "wire/record_cipher.h"

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

constexpr size_t kAesKeySize = 32;
static_assert(kSessionKeySize == kAesKeySize, "session keys are AES-256 keys");
static_assert(kRecordTagSize == 16, "the tag is GCM's whole output");
static_assert(kRecordNonceSize == 12, "GCM's 96-bit IV");

constexpr char kAlgorithm[] = "AES-256-GCM records";

void CheckKeySize(ByteView key) {
  if (key.size() != kAesKeySize) {
    std::fprintf(stderr, "gangmig: record key is %zu bytes (need %zu)\n", key.size(), kAesKeySize);
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

// The expanded key (round keys and GHASH powers) is computed once; the library keeps
// no other state between calls.
struct RecordCipher::Impl {
  IMB_MGR* mgr = nullptr;
  IMB_ARCH arch = IMB_ARCH_NONE;
  alignas(64) gcm_key_data key{};  // the AVX-512 code needs it 64-byte aligned
  alignas(64) gcm_context_data ctx{};

  explicit Impl(ByteView k) {
    CheckKeySize(k);
    mgr = alloc_mb_mgr(0);
    if (mgr == nullptr) IpsecMbDie("alloc_mb_mgr", 0);
    init_mb_mgr_auto(mgr, &arch);
    if (int err = imb_get_errno(mgr)) IpsecMbDie("init_mb_mgr_auto", err);
    IMB_AES256_GCM_PRE(mgr, k.data(), &key);
    if (int err = imb_get_errno(mgr)) IpsecMbDie("IMB_AES256_GCM_PRE", err);
  }
  ~Impl() {
    OPENSSL_cleanse(&key, sizeof key);
    OPENSSL_cleanse(&ctx, sizeof ctx);
    free_mb_mgr(mgr);
  }

  RecordTag Seal(uint64_t seq, ByteView header, uint8_t* body, size_t len) {
    std::array<uint8_t, kRecordNonceSize> iv = Nonce(seq);
    RecordTag tag;
    IMB_AES256_GCM_ENC(mgr, &key, &ctx, body, body, len, iv.data(), header.data(), header.size(),
                       tag.data(), tag.size());
    if (int err = imb_get_errno(mgr)) IpsecMbDie("IMB_AES256_GCM_ENC", err);
    return tag;
  }

  bool Open(uint64_t seq, ByteView header, const uint8_t* in, size_t len, uint8_t* out,
            ByteView tag) {
    std::array<uint8_t, kRecordNonceSize> iv = Nonce(seq);
    RecordTag want;
    IMB_AES256_GCM_DEC(mgr, &key, &ctx, out, in, len, iv.data(), header.data(), header.size(),
                       want.data(), want.size());
    if (int err = imb_get_errno(mgr)) IpsecMbDie("IMB_AES256_GCM_DEC", err);
    return tag.size() == want.size() && CRYPTO_memcmp(want.data(), tag.data(), want.size()) == 0;
  }
};

std::string RecordCipher::Implementation() {
  const std::array<uint8_t, kAesKeySize> zero_key{};
  Impl probe(zero_key);
  return std::string("intel-ipsec-mb ") + imb_get_version_str() + ", " + ArchName(probe.arch);
}

#else  // OpenSSL

// OpenSSL expands the key into the context once; each record re-initialises the context
// with just the new IV.
struct RecordCipher::Impl {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;

  explicit Impl(ByteView key) {
    CheckKeySize(key);
    enc = EVP_CIPHER_CTX_new();
    dec = EVP_CIPHER_CTX_new();
    if (enc == nullptr || dec == nullptr) OpenSslDie(kAlgorithm, "EVP_CIPHER_CTX_new");
    OpenSslCheck(kAlgorithm,
                 EVP_EncryptInit_ex(enc, EVP_aes_256_gcm(), nullptr, key.data(), nullptr),
                 "EVP_EncryptInit_ex (key)");
    OpenSslCheck(kAlgorithm,
                 EVP_DecryptInit_ex(dec, EVP_aes_256_gcm(), nullptr, key.data(), nullptr),
                 "EVP_DecryptInit_ex (key)");
  }
  ~Impl() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }

  RecordTag Seal(uint64_t seq, ByteView header, uint8_t* body, size_t len) {
    std::array<uint8_t, kRecordNonceSize> iv = Nonce(seq);
    int n = 0;
    OpenSslCheck(kAlgorithm, EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, iv.data()),
                 "EVP_EncryptInit_ex (IV)");
    OpenSslCheck(kAlgorithm, EVP_EncryptUpdate(enc, nullptr, &n, header.data(), int(header.size())),
                 "EVP_EncryptUpdate (AAD)");
    OpenSslCheck(kAlgorithm, EVP_EncryptUpdate(enc, body, &n, body, int(len)), "EVP_EncryptUpdate");
    OpenSslCheck(kAlgorithm, EVP_EncryptFinal_ex(enc, body + len, &n), "EVP_EncryptFinal_ex");
    RecordTag tag;
    OpenSslCheck(kAlgorithm,
                 EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, int(tag.size()), tag.data()),
                 "EVP_CTRL_AEAD_GET_TAG");
    return tag;
  }

  bool Open(uint64_t seq, ByteView header, const uint8_t* in, size_t len, uint8_t* out,
            ByteView tag) {
    std::array<uint8_t, kRecordNonceSize> iv = Nonce(seq);
    int n = 0;
    OpenSslCheck(kAlgorithm, EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, iv.data()),
                 "EVP_DecryptInit_ex (IV)");
    OpenSslCheck(kAlgorithm, EVP_DecryptUpdate(dec, nullptr, &n, header.data(), int(header.size())),
                 "EVP_DecryptUpdate (AAD)");
    OpenSslCheck(kAlgorithm, EVP_DecryptUpdate(dec, out, &n, in, int(len)), "EVP_DecryptUpdate");
    uint8_t t[kRecordTagSize];
    std::copy(tag.begin(), tag.end(), t);
    OpenSslCheck(kAlgorithm, EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, int(sizeof t), t),
                 "EVP_CTRL_AEAD_SET_TAG");
    return EVP_DecryptFinal_ex(dec, out + len, &n) > 0;  // OpenSSL compares in constant time
  }
};

std::string RecordCipher::Implementation() { return OpenSSL_version(OPENSSL_VERSION); }

#endif

RecordCipher::RecordCipher(ByteView key) : impl_(std::make_unique<Impl>(key)) {}

RecordCipher::~RecordCipher() = default;

RecordTag RecordCipher::Seal(uint64_t seq, ByteView header, uint8_t* body, size_t len) {
  return impl_->Seal(seq, header, body, len);
}

bool RecordCipher::Open(uint64_t seq, ByteView header, const uint8_t* ciphertext, size_t len,
                        uint8_t* plain, ByteView tag) {
  if (tag.size() != kRecordTagSize) return false;
  return impl_->Open(seq, header, ciphertext, len, plain, tag);
}

}  // namespace gangmig::wire
