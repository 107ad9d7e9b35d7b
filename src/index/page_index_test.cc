#include "index/page_index.h"

#include <gtest/gtest.h>

#define XXH_INLINE_ALL  // header-only, as in page_index.cc
#include <xxhash.h>

#include <map>
#include <random>

#include "index/xxh3_avx2.h"

namespace gangmig::index {
namespace {

Bytes Page(uint8_t fill, size_t poke = 0, uint8_t poke_value = 0) {
  Bytes p(kPageSize, fill);
  p[poke] = poke_value ? poke_value : fill;
  return p;
}

TEST(PageIndexTest, KnownSha256) {
  Sha256Pages fp;
  Bytes zero(kPageSize, 0);
  // sha256 of 4096 zero bytes (computed with sha256sum).
  EXPECT_EQ(HexString(fp.Of(zero).bytes),
            "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");
}

TEST(PageIndexTest, FastHashDependsOnSeedAndMasksBits) {
  Bytes p = Page(7);
  EXPECT_EQ(FastHashOf(p, 1), FastHashOf(p, 1));
  EXPECT_FALSE(FastHashOf(p, 1) == FastHashOf(p, 2));
  FastHash h = FastHashOf(p, 1, 4);
  EXPECT_EQ(h.hi, 0u);
  EXPECT_LT(h.lo, 16u);
  EXPECT_EQ(FastHashOf(p, 1, 0), FastHash{});
  EXPECT_EQ(FastHashOf(p, 1, 100).lo, FastHashOf(p, 1).lo);
  EXPECT_LT(FastHashOf(p, 1, 100).hi, uint64_t{1} << 36);
}

// The AVX2 build must give the portable build's hash, or two senders on different CPUs
// (and the SHA-256 / copy logic) would disagree. Compared on random pages and seeds.
TEST(PageIndexTest, Avx2HashEqualsPortableHash) {
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "this CPU has no AVX2";
  std::mt19937_64 rng(3);
  Bytes p(kPageSize);
  for (int i = 0; i < 200; ++i) {
    for (auto& b : p) b = uint8_t(rng());
    uint64_t seed = rng(), avx2[2];
    internal::Xxh3Avx2(p.data(), p.size(), seed, avx2);
    XXH128_hash_t want = XXH3_128bits_withSeed(p.data(), p.size(), seed);
    ASSERT_EQ(avx2[0], want.low64);
    ASSERT_EQ(avx2[1], want.high64);
    ASSERT_EQ(FastHashOf(p, seed), (FastHash{want.low64, want.high64}));
  }
}

TEST(PageIndexTest, SameContentSameIdDifferentContentNewId) {
  PageIndex index;
  auto a = index.FindOrInsert(Page(1));
  auto b = index.FindOrInsert(Page(2));
  auto a2 = index.FindOrInsert(Page(1));
  auto c = index.FindOrInsert(Page(1, 4095, 9));  // differs in the last byte only
  EXPECT_TRUE(a.inserted);
  EXPECT_TRUE(b.inserted);
  EXPECT_FALSE(a2.inserted);
  EXPECT_TRUE(c.inserted);
  EXPECT_EQ(a.id, 0u);
  EXPECT_EQ(b.id, 1u);
  EXPECT_EQ(a2.id, 0u);
  EXPECT_EQ(c.id, 2u);
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.stats().sha256_pages, 0u);  // all under the copy budget
}

// With every page in one of 4 hash buckets, fast-hash equality means nothing: contents
// that differ in one byte must still get their own ids, and real repeats are still found.
TEST(PageIndexTest, FastHashCollisionsNeverMakeAReference) {
  for (uint64_t budget : {uint64_t{1} << 30, uint64_t{0}, uint64_t{3} * kPageSize}) {
    SCOPED_TRACE(budget);
    PageIndex index({.copy_budget_bytes = budget, .seed = 5, .hash_bits = 2});
    for (int i = 0; i < 6; ++i) EXPECT_EQ(index.FindOrInsert(Page(0, i, 1)).id, uint32_t(i));
    for (int i = 0; i < 6; ++i) {
      auto again = index.FindOrInsert(Page(0, i, 1));
      EXPECT_FALSE(again.inserted);
      EXPECT_EQ(again.id, uint32_t(i));
    }
    EXPECT_GT(index.stats().hash_collisions, 0u);
  }
}

TEST(PageIndexTest, PastTheCopyBudgetSha256Verifies) {
  PageIndex index({.copy_budget_bytes = 2 * kPageSize, .seed = 1});
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(index.FindOrInsert(Page(uint8_t(i))).inserted);
  EXPECT_EQ(index.stats().sha256_pages, 3u);  // ids 2, 3, 4
  for (int i = 0; i < 5; ++i) EXPECT_EQ(index.FindOrInsert(Page(uint8_t(i))).id, uint32_t(i));
  EXPECT_EQ(index.stats().sha256_pages, 6u);  // one per lookup that met an id past the budget
  EXPECT_EQ(index.bytes_held(), 2 * 1024 * 1024 + 3 * sizeof(Digest));
}

TEST(PageIndexTest, FullChainStillNumbersNewPages) {
  PageIndex index({.seed = 1, .hash_bits = 0});  // one bucket for everything
  for (int i = 0; i < 20; ++i) EXPECT_EQ(index.FindOrInsert(Page(uint8_t(i))).id, uint32_t(i));
  EXPECT_EQ(index.stats().unlinked, 12u);  // 8 linked
  // The first 8 contents are linked and found again; the unlinked ones come back as new ids.
  EXPECT_FALSE(index.FindOrInsert(Page(0)).inserted);
  auto late = index.FindOrInsert(Page(19));
  EXPECT_TRUE(late.inserted);
  EXPECT_EQ(late.id, 20u);
}

// Random pages from a small pool, under every hash width and budget: a reference is only
// ever to the same content, and with the full hash every repeat is a reference.
TEST(PageIndexTest, RandomSequencesMatchAReferenceModel) {
  std::mt19937 rng(42);
  std::vector<Bytes> pool;
  for (int i = 0; i < 40; ++i) pool.push_back(Page(uint8_t(i % 3), size_t(rng() % kPageSize), uint8_t(1 + i)));
  for (int bits : {0, 3, 128}) {
    for (uint64_t budget : {uint64_t{0}, 10 * kPageSize, uint64_t{1} << 30}) {
      PageIndex index({.copy_budget_bytes = budget, .seed = rng(), .hash_bits = bits});
      std::vector<const Bytes*> by_id;
      std::map<const Bytes*, uint32_t> first;
      for (int step = 0; step < 400; ++step) {
        const Bytes& p = pool[rng() % pool.size()];
        auto look = index.FindOrInsert(p);
        if (look.inserted) {
          ASSERT_EQ(look.id, by_id.size());
          by_id.push_back(&p);
          first.try_emplace(&p, look.id);
        } else {
          ASSERT_EQ(*by_id[look.id], p) << "bits " << bits << " budget " << budget;
        }
        if (bits == 128) {
          ASSERT_EQ(look.id, first.at(&p));
        }
      }
    }
  }
}

// Copies past the resident bound live in the spill file: repeats of spilled pages are
// still proven byte by byte and found, and CopyOf reads them back.
TEST(PageIndexTest, SpilledCopiesStillProveRepeats) {
  PageIndex index({.seed = 3, .copies = {.resident_bytes = 1, .spill_dir = ::testing::TempDir()}});
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(index.FindOrInsert(Page(0, size_t(i), 7)).id, uint32_t(i));
  EXPECT_GT(index.bytes_spilled(), 0u);
  EXPECT_LE(index.bytes_held(), 2u * PageStore::kSlabBytes);
  for (int i = 0; i < 3000; i += 7) {
    auto again = index.FindOrInsert(Page(0, size_t(i), 7));
    ASSERT_FALSE(again.inserted);
    ASSERT_EQ(again.id, uint32_t(i));
  }
  EXPECT_EQ(Bytes(index.CopyOf(5).begin(), index.CopyOf(5).end()), Page(0, 5, 7));
  EXPECT_EQ(index.stats().copy_errors, 0u);
  EXPECT_EQ(index.stats().sha256_pages, 0u);
}

// A spill file that cannot be made ends the copies: later pages are proven by SHA-256,
// and every lookup stays right.
TEST(PageIndexTest, FailedSpillFallsBackToSha256) {
  PageIndex index({.seed = 3, .copies = {.resident_bytes = 1, .spill_dir = "/nonexistent"}});
  for (int i = 0; i < 1500; ++i) ASSERT_EQ(index.FindOrInsert(Page(0, size_t(i), 7)).id, uint32_t(i));
  EXPECT_EQ(index.stats().copy_errors, 1u);
  EXPECT_EQ(index.stats().sha256_pages, 1500u - 1024u);
  for (int i = 0; i < 1500; i += 3) ASSERT_EQ(index.FindOrInsert(Page(0, size_t(i), 7)).id, uint32_t(i));
  EXPECT_TRUE(index.CopyOf(1200).empty());
  EXPECT_FALSE(index.CopyOf(3).empty());
}

// drop_copies: a copy leaving RAM is replaced by its SHA-256, computed for the whole slab
// at once. Repeats of dropped pages are still found (by digest), pages that only share
// the fast hash with a dropped one are not, nothing is spilled, and only pages still in
// RAM can be delta bases.
TEST(PageIndexTest, DroppedCopiesProveRepeatsBySha256) {
  const PageStore::Options two_slabs = {.resident_bytes = 1, .spill_dir = ""};
  PageIndex index({.seed = 3, .copies = two_slabs, .drop_copies = true});
  const int n = 3000;  // ~6 slabs, 2 resident
  for (int i = 0; i < n; ++i) ASSERT_EQ(index.FindOrInsert(Page(0, size_t(i), 7)).id, uint32_t(i));
  EXPECT_EQ(index.bytes_spilled(), 0u);
  EXPECT_EQ(index.stats().sha256_pages, 4u * PageStore::kPagesPerSlab);  // slabs 0-3 dropped
  for (int i = 0; i < n; i += 7) {
    auto again = index.FindOrInsert(Page(0, size_t(i), 7));
    ASSERT_FALSE(again.inserted) << i;
    ASSERT_EQ(again.id, uint32_t(i));
  }
  EXPECT_TRUE(index.CopyOf(5).empty());
  EXPECT_EQ(Bytes(index.CopyOf(n - 1).begin(), index.CopyOf(n - 1).end()), Page(0, size_t(n - 1), 7));
  EXPECT_EQ(index.stats().copy_errors, 0u);

  // 6-bit fast hashes: new pages share theirs with dropped pages, and are still new.
  PageIndex narrow({.seed = 3, .hash_bits = 6, .copies = two_slabs, .drop_copies = true});
  for (int i = 0; i < 1100; ++i) ASSERT_TRUE(narrow.FindOrInsert(Page(0, size_t(i), 7)).inserted);
  ASSERT_GE(narrow.stats().sha256_pages, PageStore::kPagesPerSlab);  // slab 0 dropped
  uint64_t collisions = narrow.stats().hash_collisions;
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(narrow.FindOrInsert(Page(1, size_t(i), 9)).inserted);
  EXPECT_GT(narrow.stats().hash_collisions, collisions);
  auto first = narrow.FindOrInsert(Page(0, 0, 7));  // id 0, dropped, first of its chain
  EXPECT_FALSE(first.inserted);
  EXPECT_EQ(first.id, 0u);
}

// The multi-buffer digests equal OpenSSL's one page at a time.
TEST(PageIndexTest, ManyDigestsEqualOneByOne) {
  std::mt19937 rng(5);
  Bytes pages(37 * kPageSize);
  for (auto& b : pages) b = uint8_t(rng());
  std::vector<Digest> many(37);
  Sha256Pages sha;
  sha.Many(pages.data(), 37, kPageSize, many.data());
  Sha256Pages fp;
  for (size_t i = 0; i < 37; ++i) {
    ByteView page(pages.data() + i * kPageSize, kPageSize);
    EXPECT_EQ(many[i], fp.Of(page)) << i;
    EXPECT_EQ(sha.Of(page), fp.Of(page)) << i;
  }
  Bytes zero(kPageSize, 0);
  sha.Many(zero.data(), 1, kPageSize, many.data());
  EXPECT_EQ(HexString(many[0].bytes), "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7");
}

}  // namespace
}  // namespace gangmig::index
