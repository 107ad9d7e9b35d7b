// Page fingerprints and the content index of the sender, and the page store of the
// receiver. Together they decide which page contents already crossed the link.
//
// Equality of page contents is decided by SHA-256 alone: a collision-resistant 256-bit
// hash that a guest cannot steer (docs/DESIGN.md, "Why SHA-256"). No fast
// non-cryptographic fingerprint is ever trusted on its own.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"

namespace gangmig::index {

inline constexpr size_t kPageSize = 4096;

struct Digest {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const Digest& o) const { return bytes == o.bytes; }
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof(h));  // already uniformly distributed
    return h;
  }
};

// SHA-256 of page contents, with the OpenSSL context set up once and reused.
class Fingerprinter {
 public:
  Fingerprinter();
  ~Fingerprinter();
  Fingerprinter(const Fingerprinter&) = delete;
  Fingerprinter& operator=(const Fingerprinter&) = delete;

  Digest Of(ByteView page);

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

// Sender side: digest -> page id, ids dense from 0 in insertion order. The ids must match
// the order in which PAGE frames go on the wire (the receiver numbers them the same way).
class PageIndex {
 public:
  struct Lookup {
    uint32_t id;
    bool inserted;  // true: first time this content is seen; send it as a PAGE frame
  };
  Lookup FindOrInsert(const Digest& digest);
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<Digest, uint32_t, DigestHash> map_;
};

// Receiver side: page id -> content. Pages live in 1 MiB slabs so that growing the store
// never moves a page that a caller is reading.
class PageStore {
 public:
  uint32_t Add(ByteView page);  // REQUIRES: page.size() == kPageSize
  // REQUIRES: id < size()
  ByteView Get(uint32_t id) const {
    return ByteView(slabs_[id / kPagesPerSlab].get() + (id % kPagesPerSlab) * kPageSize, kPageSize);
  }
  uint32_t size() const { return count_; }
  uint64_t bytes_held() const { return uint64_t(slabs_.size()) * kPagesPerSlab * kPageSize; }

 private:
  static constexpr uint32_t kPagesPerSlab = 256;
  std::vector<std::unique_ptr<uint8_t[]>> slabs_;
  uint32_t count_ = 0;
};

}  // namespace gangmig::index
