// The record layer's AEAD: AES-256-GCM (NIST SP 800-38D) over each record body. Key: a
// direction's session key (fresh per connection, handshake.h). Nonce (IV): 4 zero bytes
// || be64 seq. Associated data: the record's be32 body_len. The body is encrypted in
// place and followed by GCM's 16-byte tag. RecordSealer and RecordOpener each own one
// RecordCipher; nothing else uses it. Format: docs/WIRE.md, section 3.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "wire/wire_format.h"

namespace gangmig::wire {

using RecordTag = std::array<uint8_t, kRecordTagSize>;

// Seals and opens one direction's records under one key, which is expanded once. Not
// copyable; not thread-safe (one per sealer or opener).
class RecordCipher {
 public:
  // `key` is the direction's session key (SessionKeys::c2s or ::s2c); it is copied.
  // REQUIRES: key.size() == kSessionKeySize (aborts otherwise).
  explicit RecordCipher(ByteView key);
  ~RecordCipher();
  RecordCipher(const RecordCipher&) = delete;
  RecordCipher& operator=(const RecordCipher&) = delete;

  // Encrypts record number `seq` in place: `body` (of `header`'s length) becomes its
  // ciphertext; returns the tag. REQUIRES: header.size() == kRecordHeaderSize
  RecordTag Seal(uint64_t seq, ByteView header, uint8_t* body, size_t len);
  // Decrypts record number `seq` from `ciphertext` into `plain` (len bytes; may be the
  // same buffer) and checks `tag` in constant time. On false, `plain` holds garbage the
  // caller must not use. REQUIRES: tag.size() == kRecordTagSize
  [[nodiscard]] bool Open(uint64_t seq, ByteView header, const uint8_t* ciphertext, size_t len,
                          uint8_t* plain, ByteView tag);

  // Which implementation runs in this build and on this CPU, e.g. "intel-ipsec-mb 1.3.0,
  // AVX512" or "OpenSSL 3.0.19 27 Jan 2026" (for reports).
  static std::string Implementation();

 private:
  struct Impl;  // the library's state (record_cipher.cc)
  std::unique_ptr<Impl> impl_;
};

}  // namespace gangmig::wire
