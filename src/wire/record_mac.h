// The record layer's MAC: the 16-byte tag of RFC 8439's AEAD_CHACHA20_POLY1305 used with
// an empty plaintext. Key: a direction's session key. Nonce: 4 zero bytes || be64 seq.
// Associated data: be32 body_len || body (the record's bytes before its tag). RecordSealer
// and RecordOpener each own one RecordMac; nothing else uses it (the handshake keeps
// HMAC-SHA256, hmac.h). Format: docs/WIRE.md, section 3.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "wire/wire_format.h"

namespace gangmig::wire {

using RecordTag = std::array<uint8_t, kRecordTagSize>;

// Computes and checks the tags of one direction's records under one key, which is set
// up once. Not copyable; not thread-safe (one per sealer or opener).
class RecordMac {
 public:
  // `key` is the direction's session key (SessionKeys::c2s or ::s2c); it is copied.
  // REQUIRES: key.size() == kSessionKeySize (aborts otherwise).
  explicit RecordMac(ByteView key);
  ~RecordMac();
  RecordMac(const RecordMac&) = delete;
  RecordMac& operator=(const RecordMac&) = delete;

  // The tag of record number `seq`, given the record's length field and body as they
  // are on the wire (`header_and_body` = be32 body_len || body).
  RecordTag Of(uint64_t seq, ByteView header_and_body);
  // Whether `tag` is the tag of that record; compared in constant time.
  // REQUIRES: tag.size() == kRecordTagSize
  bool Verify(uint64_t seq, ByteView header_and_body, ByteView tag);

  // Which implementation computes the tags in this build and on this CPU, e.g.
  // "intel-ipsec-mb 1.3.0, AVX512" or "OpenSSL 3.0.19 27 Jan 2026" (for reports).
  static std::string Implementation();

 private:
  struct Impl;  // the library's state (record_mac.cc)
  std::unique_ptr<Impl> impl_;
};

}  // namespace gangmig::wire
