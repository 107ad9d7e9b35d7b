// Page fingerprints and the content index of the sender, and the page store of the
// receiver. Together they decide which page contents already crossed the link.
//
// The sender finds candidate duplicates with a fast seeded 128-bit hash (XXH3) and then
// proves equality: byte by byte against its own copy of the earlier page, or, once the
// copies reach their memory budget, by SHA-256 (collision resistant, a guest cannot steer
// it). A fast hash alone never decides that two pages are equal (docs/DESIGN.md,
// "How the sender decides two pages are equal").
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "index/head_table.h"

namespace gangmig::index {

inline constexpr size_t kPageSize = 4096;

struct Digest {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const Digest& o) const { return bytes == o.bytes; }
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

// The fast candidate hash (head_table.h) of `page`. `bits` < 128 keeps only the low
// `bits` bits (tests use it to force collisions).
FastHash FastHashOf(ByteView page, uint64_t seed, int bits = 128);

// Receiver side (and the sender's verification copies): page id -> content. Pages live
// in 2 MiB slabs so that growing the store never moves a page that a caller is reading.
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
  struct FreeSlab {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  static constexpr uint32_t kPagesPerSlab = 512;  // 2 MiB: one transparent huge page
  std::vector<std::unique_ptr<uint8_t[], FreeSlab>> slabs_;
  uint32_t count_ = 0;
};

// Sender side: page content -> page id, ids dense from 0 in insertion order. The ids must
// match the order in which PAGE frames go on the wire (the receiver numbers them the same
// way). Not thread-safe; one per session.
class PageIndex {
 public:
  struct Options {
    uint64_t copy_budget_bytes = uint64_t{1} << 30;  // verification copies; then SHA-256
    uint64_t seed = 0;                               // secret per session (RandomSeed())
    int hash_bits = 128;                             // < 128 only in tests
  };
  struct Lookup {
    uint32_t id;
    bool inserted;  // true: first time this content is seen; send it as a PAGE frame
  };
  struct Stats {
    uint64_t hash_collisions = 0;  // fast hash equal, contents different
    uint64_t unlinked = 0;         // new pages not indexed: their hash chain was full
    uint64_t sha256_pages = 0;     // pages hashed with SHA-256 (beyond the copy budget)
  };

  PageIndex() : PageIndex(Options{}) {}
  explicit PageIndex(const Options& options);

  // REQUIRES: page.size() == kPageSize
  Lookup FindOrInsert(ByteView page) { return FindOrInsert(page, KeyOf(page)); }
  // The same in two steps, so that a caller can do other work while the index's memory
  // for `page` loads: KeyOf hashes the page and starts that load; FindOrInsert then takes
  // the key. REQUIRES: key == KeyOf(page)
  FastHash KeyOf(ByteView page) const;
  Lookup FindOrInsert(ByteView page, const FastHash& key);
  size_t size() const { return next_.size(); }
  // The sender's copy of page `id` when it keeps one (ids inside the copy budget), else
  // an empty view. REQUIRES: id < size()
  ByteView CopyOf(uint32_t id) const { return id < copy_pages_ ? copies_.Get(id) : ByteView(); }
  // Bytes held for verification: page copies plus digests.
  uint64_t bytes_held() const { return copies_.bytes_held() + digests_.size() * sizeof(Digest); }
  const Stats& stats() const { return stats_; }

  // A seed from the OS's random source.
  static uint64_t RandomSeed();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr int kMaxChain = 8;  // distinct contents kept per fast-hash value

  bool Matches(uint32_t id, ByteView page, std::optional<Digest>* sha);
  uint32_t Insert(ByteView page, std::optional<Digest>* sha);
  const Digest& Sha(ByteView page, std::optional<Digest>* sha);

  Options options_;
  uint32_t copy_pages_;  // ids below this are verified against copies_
  HeadTable heads_;              // fast hash -> newest id with it
  std::vector<uint32_t> next_;   // id -> next id with the same fast hash (kNone ends)
  PageStore copies_;             // contents of ids < copy_pages_
  std::vector<Digest> digests_;  // SHA-256 of ids >= copy_pages_
  Fingerprinter fp_;
  Stats stats_;
};

}  // namespace gangmig::index
