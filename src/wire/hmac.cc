// HMAC-SHA256 with the key set up once.
//
// An HMAC is two SHA-256 passes whose first block is the key XORed with a pad; OpenSSL
// keeps the two hashed pads after EVP_MAC_init(key). Calling EVP_MAC_init again with a
// NULL key restarts from those saved states instead of hashing the key again, and needs
// no allocation. Measured on the development host (SHA-NI, OpenSSL 3.0): 64-byte inputs
// take ~230 ns this way against ~400 ns when re-keying, ~500 ns for EVP_MAC_CTX_dup of a
// keyed template and ~1150 ns for the one-shot HMAC(); 1 MiB inputs run at ~1.7 GB/s
// whichever way (the hash itself dominates).
//
// OpenSSL failures here can only mean a broken installation (HMAC and SHA-256 are always
// present, the arguments are always valid), so they abort rather than thread a Status
// through every record.
#include "wire/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "wire/openssl_check.h"

namespace gangmig::wire {
namespace {

constexpr char kAlgorithm[] = "HMAC-SHA256";

EVP_MAC_CTX* NewKeyedContext(ByteView key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) OpenSslDie(kAlgorithm, "EVP_MAC_fetch");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);  // the context holds its own reference
  if (ctx == nullptr) OpenSslDie(kAlgorithm, "EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  // A zero-length key is legal HMAC but EVP_MAC_init would read it as "keep the old
  // key"; pass a valid pointer so that it is taken as a key.
  static const uint8_t kEmpty = 0;
  const uint8_t* k = key.empty() ? &kEmpty : key.data();
  OpenSslCheck(kAlgorithm, EVP_MAC_init(ctx, k, key.size(), params), "EVP_MAC_init");
  return ctx;
}

}  // namespace

HmacSha256::HmacSha256(ByteView key) : ctx_(NewKeyedContext(key)) {}

HmacSha256::~HmacSha256() { EVP_MAC_CTX_free(ctx_); }

void HmacSha256::Begin() {
  OpenSslCheck(kAlgorithm, EVP_MAC_init(ctx_, nullptr, 0, nullptr), "EVP_MAC_init");
}

void HmacSha256::Update(ByteView data) {
  OpenSslCheck(kAlgorithm, EVP_MAC_update(ctx_, data.data(), data.size()), "EVP_MAC_update");
}

Mac HmacSha256::Finish() {
  Mac mac;
  size_t len = 0;
  OpenSslCheck(kAlgorithm, EVP_MAC_final(ctx_, mac.data(), &len, mac.size()), "EVP_MAC_final");
  if (len != mac.size()) OpenSslDie(kAlgorithm, "EVP_MAC_final length");
  return mac;
}

Mac HmacSha256Of(ByteView key, std::initializer_list<ByteView> parts) {
  HmacSha256 h(key);
  h.Begin();
  for (ByteView p : parts) h.Update(p);
  return h.Finish();
}

}  // namespace gangmig::wire
