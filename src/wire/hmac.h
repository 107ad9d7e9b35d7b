// HMAC-SHA256 over OpenSSL's EVP_MAC, the MAC of the handshake: proofs and session keys
// (one-shot HmacSha256Of). HmacSha256 is keyed once and can be restarted for any number
// of MACs. Records use an AEAD (record_cipher.h).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "base/bytes.h"
#include "wire/wire_format.h"

struct evp_mac_ctx_st;

namespace gangmig::wire {

using Mac = std::array<uint8_t, kMacSize>;

// A keyed HMAC-SHA256 that computes any number of MACs with the same key.
// Not copyable; one per direction of a session.
class HmacSha256 {
 public:
  explicit HmacSha256(ByteView key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  // Starts a new MAC (discarding any unfinished one).
  void Begin();
  // REQUIRES: Begin() was called since the last Finish().
  void Update(ByteView data);
  // Finishes the MAC started by Begin() and returns it.
  Mac Finish();

 private:
  evp_mac_ctx_st* ctx_;
};

// HMAC-SHA256(key, parts[0] || parts[1] || ...).
Mac HmacSha256Of(ByteView key, std::initializer_list<ByteView> parts);

}  // namespace gangmig::wire
