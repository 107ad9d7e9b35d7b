// Page fingerprints and the content index of the sender, and the page store of the
// receiver. Together they decide which page contents already crossed the link.
//
// The sender finds candidate duplicates with a fast seeded 128-bit hash (XXH3) and then
// proves equality: byte by byte against its own copy of the earlier page, or, for pages
// whose copy left RAM (drop_copies) or past the copies' budget, by SHA-256 (collision
// resistant, a guest cannot steer it). A fast hash alone never decides that two pages are equal (docs/DESIGN.md,
// "How the sender decides two pages are equal").
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "index/head_table.h"
#include "index/page_store.h"
#include "index/sha256_pages.h"

namespace gangmig::index {

inline constexpr size_t kPageSize = 4096;

// The fast candidate hash (head_table.h) of `page`. `bits` < 128 keeps only the low
// `bits` bits (tests use it to force collisions).
FastHash FastHashOf(ByteView page, uint64_t seed, int bits = 128);

// Sender side: page content -> page id, ids dense from 0 in insertion order. The ids must
// match the order in which PAGE frames go on the wire (the receiver numbers them the same
// way). Not thread-safe; one per session.
class PageIndex {
 public:
  struct Options {
    uint64_t copy_budget_bytes = uint64_t{1} << 30;  // verification copies; then SHA-256
    uint64_t seed = 0;                               // secret per session (RandomSeed())
    int hash_bits = 128;                             // < 128 only in tests
    // Where the copies live: the newest in RAM, older ones in a spill file (page_store.h).
    PageStore::Options copies = {};
    // Instead of spilling, a copy leaving RAM is replaced by its SHA-256 (computed for a
    // whole slab at once, sha256_pages.h): no spill file and no page-cache writes, at
    // ~1 µs per page; such pages can no longer be delta bases (CopyOf is empty).
    bool drop_copies = false;
  };
  struct Lookup {
    uint32_t id;
    bool inserted;  // true: first time this content is seen; send it as a PAGE frame
  };
  struct Stats {
    uint64_t hash_collisions = 0;  // fast hash equal, contents different
    uint64_t unlinked = 0;         // new pages not indexed: their hash chain was full
    uint64_t sha256_pages = 0;     // pages hashed with SHA-256 (beyond the copy budget)
    uint64_t copy_errors = 0;      // a copy could not be written or read back (spill file):
                                   // the page counts as different / is proven by SHA-256
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
  // The sender's copy of page `id` when it keeps one (ids inside the copy budget, and
  // the spill file read back), else an empty view. Valid until the next call into the
  // index. REQUIRES: id < size()
  ByteView CopyOf(uint32_t id);
  // Bytes of RAM held for verification: resident page copies plus digests.
  uint64_t bytes_held() const { return copies_.bytes_held() + digests_.size() * sizeof(Digest); }
  // Bytes of copies in the spill file.
  uint64_t bytes_spilled() const { return copies_.bytes_spilled(); }
  const Stats& stats() const { return stats_; }

  // A seed from the OS's random source.
  static uint64_t RandomSeed();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr int kMaxChain = 8;  // distinct contents kept per fast-hash value

  bool Matches(uint32_t id, ByteView page, std::optional<Digest>* sha);
  bool HasCopy(uint32_t id) const {
    return id < copy_pages_ && (!options_.drop_copies || id >= copies_.first_resident_id());
  }
  void SetDigest(uint32_t id, const Digest& d);
  // Where id's digest is in digests_: past the copy budget only, or (drop_copies) any id.
  size_t DigestSlot(uint32_t id) const { return options_.drop_copies ? id : id - copy_pages_; }
  uint32_t Insert(ByteView page, std::optional<Digest>* sha);
  const Digest& Sha(ByteView page, std::optional<Digest>* sha);

  Options options_;
  uint32_t copy_pages_;  // ids below this are verified against copies_
  HeadTable heads_;              // fast hash -> newest id with it
  std::vector<uint32_t> next_;   // id -> next id with the same fast hash (kNone ends)
  PageStore copies_;             // contents of ids < copy_pages_
  std::vector<Digest> digests_;  // [DigestSlot(id)]: SHA-256 of ids without a copy
  Sha256Pages sha_;
  Stats stats_;
};

}  // namespace gangmig::index
