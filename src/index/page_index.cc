// How the sender decides that a page's content already crossed the link.
//
// Every page is hashed with XXH3-128 under a random per-session seed (~0.3 µs per 4 KiB
// page with SSE2; SHA-256 with SHA-NI needs ~2.5 µs). The hash only finds candidates: a
// map takes it to the newest page id with that hash, and `next_` chains older ids with
// the same hash. A candidate counts as equal only after proof:
//   - ids below the copy budget keep a copy of their content (PageStore), and equality is
//     a memcmp of the two pages -- the paper's "hash, then byte-by-byte check";
//   - ids past the budget keep only their SHA-256, and equality is equality of SHA-256,
//     which a guest cannot steer. SHA-256 of the incoming page is computed at most once
//     per lookup, and only when such an id is a candidate or is being created.
// So a fast-hash collision (random, or crafted by a guest that somehow learned the seed)
// costs one failed comparison and never a wrong reference. A chain holds at most
// kMaxChain ids; a new content whose chain is full still gets an id (the receiver numbers
// every PAGE frame) but is not linked, so crafted collisions cannot make lookups slow.
//
// Memory: 52 to 100 bytes of map (head_table.cc) and chain per distinct page, plus
// 4 KiB per page under the copy budget (in RAM up to PageStore's resident bound, then in
// its spill file) or 32 bytes past it.
#include "index/page_index.h"

#include <sys/random.h>
// Header-only use: xxHash inlined into this file, nothing to link.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>

#include "index/xxh3_avx2.h"

namespace gangmig::index {

// AVX2 hashes a page in ~0.1 µs, SSE2 (the x86-64 baseline) in ~0.25 µs.
FastHash FastHashOf(ByteView page, uint64_t seed, int bits) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  FastHash f;
  if (avx2) {
    uint64_t h[2];
    internal::Xxh3Avx2(page.data(), page.size(), seed, h);
    f = FastHash{h[0], h[1]};
  } else {
    XXH128_hash_t h = XXH3_128bits_withSeed(page.data(), page.size(), seed);
    f = FastHash{h.low64, h.high64};
  }
  if (bits < 128) {
    f.hi = bits > 64 ? f.hi & ((uint64_t{1} << (bits - 64)) - 1) : 0;
    if (bits < 64) f.lo &= (uint64_t{1} << bits) - 1;
  }
  return f;
}

namespace {
PageStore::Options StoreOptions(const PageIndex::Options& o,
                                std::function<void(uint32_t, const uint8_t*)> on_drop) {
  PageStore::Options s = o.copies;
  if (o.drop_copies) s.on_drop = std::move(on_drop);
  return s;
}
}  // namespace

PageIndex::PageIndex(const Options& options)
    : options_(options),
      copy_pages_(uint32_t(std::min<uint64_t>(options.copy_budget_bytes / kPageSize, kNone))),
      copies_(StoreOptions(options, [this](uint32_t first, const uint8_t* pages) {
        // The slab's ids keep their identity as SHA-256 digests.
        if (digests_.size() < size_t(first) + PageStore::kPagesPerSlab)
          digests_.resize(size_t(first) + PageStore::kPagesPerSlab);
        sha_.Many(pages, PageStore::kPagesPerSlab, kPageSize, &digests_[first]);
        stats_.sha256_pages += PageStore::kPagesPerSlab;
      })) {}

uint64_t PageIndex::RandomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), 0) != ssize_t(sizeof(seed))) std::abort();
  return seed;
}

FastHash PageIndex::KeyOf(ByteView page) const {
  FastHash key = FastHashOf(page, options_.seed, options_.hash_bits);
  heads_.Prefetch(key);
  return key;
}

PageIndex::Lookup PageIndex::FindOrInsert(ByteView page, const FastHash& key) {
  HeadTable::Slot* head = heads_.Find(key);
  std::optional<Digest> sha;
  int depth = 0;
  for (uint32_t id = head->id; id != kNone; id = next_[id], ++depth) {
    if (Matches(id, page, &sha)) return Lookup{id, false};
    ++stats_.hash_collisions;
  }
  uint32_t id = Insert(page, &sha);
  if (depth < kMaxChain) {
    next_[id] = head->id;
    heads_.Set(head, key, id);
  } else {
    ++stats_.unlinked;
  }
  return Lookup{id, true};
}

ByteView PageIndex::CopyOf(uint32_t id) {
  if (!HasCopy(id)) return ByteView();
  auto copy = copies_.Get(id);
  if (copy.ok()) return *copy;
  ++stats_.copy_errors;
  return ByteView();
}

// A copy that cannot be read back (the spill file failed) proves nothing: the page then
// counts as different, which costs a page on the link, never a wrong REF.
bool PageIndex::Matches(uint32_t id, ByteView page, std::optional<Digest>* sha) {
  if (HasCopy(id)) {
    ByteView copy = CopyOf(id);
    return !copy.empty() && std::memcmp(copy.data(), page.data(), kPageSize) == 0;
  }
  return digests_[DigestSlot(id)] == Sha(page, sha);
}

void PageIndex::SetDigest(uint32_t id, const Digest& d) {
  size_t slot = DigestSlot(id);
  if (digests_.size() <= slot) digests_.resize(slot + 1);
  digests_[slot] = d;
}

// When a copy cannot be stored (the spill file failed), the copies end there: this id and
// every later one are proven by SHA-256, as past the copy budget.
uint32_t PageIndex::Insert(ByteView page, std::optional<Digest>* sha) {
  uint32_t id = uint32_t(next_.size());
  next_.push_back(kNone);
  if (id < copy_pages_ && !copies_.Add(page).ok()) {
    ++stats_.copy_errors;
    copy_pages_ = id;
  }
  if (id >= copy_pages_) SetDigest(id, Sha(page, sha));
  return id;
}

const Digest& PageIndex::Sha(ByteView page, std::optional<Digest>* sha) {
  if (!sha->has_value()) {
    *sha = sha_.Of(page);
    ++stats_.sha256_pages;
  }
  return **sha;
}

}  // namespace gangmig::index
