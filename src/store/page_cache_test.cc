#include "store/page_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gangmig::store {
namespace {

Bytes Page(uint32_t n) {
  Bytes p(kPageSize);
  for (size_t i = 0; i < p.size(); i += 4) StoreBE32(p.data() + i, n * 2654435761u + uint32_t(i));
  return p;
}

class PageCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/gangmig-cache-test-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<PageCache> Open(uint64_t max_bytes = 1 << 30, uint32_t per_segment = 16) {
    auto c = PageCache::Open(dir_, max_bytes, per_segment);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  Key Put(PageCache* c, uint32_t n) {
    Bytes p = Page(n);
    Key k = PageCache::KeyOf(&fp_, p);
    EXPECT_TRUE(c->Put(k, p).ok());
    return k;
  }
  // Whether page n is in the cache, and (if so) intact.
  bool Has(PageCache* c, uint32_t n) {
    Bytes p = Page(n), out(kPageSize);
    auto got = c->Get(PageCache::KeyOf(&fp_, p), out.data());
    EXPECT_TRUE(got.ok());
    if (got.ok() && *got) {
      EXPECT_EQ(out, p) << "page " << n;
    }
    return got.ok() && *got;
  }

  std::string dir_;
  index::Sha256Pages fp_;
};

TEST_F(PageCacheTest, RoundTripAndRestart) {
  {
    auto c = Open();
    for (uint32_t n = 0; n < 100; ++n) Put(c.get(), n);
    Put(c.get(), 7);  // already there: not written again
    EXPECT_EQ(c->stats().added, 100u);
    EXPECT_TRUE(Has(c.get(), 5));  // from the write batch or the file
    EXPECT_FALSE(Has(c.get(), 1000));
    EXPECT_EQ(c->stats().entries, 100u);
  }
  auto c = Open();  // a receiver restart
  EXPECT_EQ(c->stats().entries, 100u);
  for (uint32_t n = 0; n < 100; ++n) EXPECT_TRUE(Has(c.get(), n)) << n;
  Put(c.get(), 100);  // appends go on after the restart
  EXPECT_TRUE(Has(c.get(), 100));
  EXPECT_EQ(c->stats().hits, 101u);
}

// Segments of 16 entries, at most 3 segments' worth: the oldest go first, and the
// cache never holds much more than its bound.
TEST_F(PageCacheTest, EvictsOldestSegmentsFirst) {
  const uint64_t bound = 3 * 16 * kEntrySize;
  auto c = Open(bound, 16);
  for (uint32_t n = 0; n < 160; ++n) Put(c.get(), n);
  CacheStats s = c->stats();
  EXPECT_LE(s.bytes, bound + 16 * kEntrySize);
  EXPECT_GT(s.evicted, 0u);
  EXPECT_EQ(s.entries + s.evicted, 160u);
  EXPECT_FALSE(Has(c.get(), 0));
  EXPECT_TRUE(Has(c.get(), 159));
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) files += e.path().extension() == ".pages";
  EXPECT_EQ(files, s.segments);
}

// A page read while it sits in the oldest quarter is written again at the head, so it
// outlives the pages around it.
TEST_F(PageCacheTest, PagesInUseGetASecondChance) {
  auto c = Open(8 * 16 * kEntrySize, 16);
  for (uint32_t n = 0; n < 8 * 16; ++n) Put(c.get(), n);
  EXPECT_TRUE(Has(c.get(), 3));  // in the oldest segment: rescued
  EXPECT_EQ(c->stats().rescued, 1u);
  for (uint32_t n = 1000; n < 1000 + 4 * 16; ++n) Put(c.get(), n);
  EXPECT_TRUE(Has(c.get(), 3));
  EXPECT_FALSE(Has(c.get(), 4));
}

// A crash mid-write leaves a torn entry at the end of the head segment: it is not
// indexed, the segment is cut back to its whole entries, and appends go on.
TEST_F(PageCacheTest, TornTailIsDroppedOnOpen) {
  {
    auto c = Open();
    for (uint32_t n = 0; n < 10; ++n) Put(c.get(), n);
  }
  std::string seg = dir_ + "/seg-00000001.pages";
  ASSERT_EQ(std::filesystem::file_size(seg), 10 * kEntrySize);
  {
    std::ofstream f(seg, std::ios::app | std::ios::binary);
    Bytes half(kEntrySize / 2, 0x5a);
    f.write(reinterpret_cast<const char*>(half.data()), std::streamsize(half.size()));
  }
  auto c = Open();
  EXPECT_EQ(c->stats().entries, 10u);
  EXPECT_EQ(std::filesystem::file_size(seg), 10 * kEntrySize);
  Put(c.get(), 10);
  ASSERT_TRUE(c->Flush().ok());
  EXPECT_TRUE(Has(c.get(), 10));
  EXPECT_TRUE(Has(c.get(), 9));
}

// A flipped bit on disk is never handed out as a page: the read is a miss and the entry
// is forgotten; on the next open it is not indexed at all.
// A writer killed (SIGKILL) while it appends: whatever the moment, the cache opens, every
// page it finds is intact, and it goes on taking pages.
TEST_F(PageCacheTest, WriterKilledMidWriteLeavesAConsistentCache) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    std::filesystem::remove_all(dir_);
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto c = PageCache::Open(dir_, 1 << 30, 64);
      if (!c.ok()) _exit(2);
      index::Sha256Pages fp;
      for (uint32_t n = 0;; ++n) {
        Bytes p = Page(n);
        if (!(*c)->Put(PageCache::KeyOf(&fp, p), p).ok()) _exit(3);
        if (n % 7 == 0 && !(*c)->Flush().ok()) _exit(4);
        if (n == 500 && write(ready[1], "r", 1) != 1) _exit(5);
      }
    }
    close(ready[1]);
    char byte;
    ASSERT_EQ(read(ready[0], &byte, 1), 1);  // 500 pages are in
    usleep(useconds_t(1000 * (round * 7 + 1)));
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    close(ready[0]);
    auto c = Open(1 << 30, 64);
    ASSERT_NE(c, nullptr);
    uint32_t found = 0;  // pages go in in order, so what is on disk is pages 0..found-1
    while (found < 200000 && Has(c.get(), found)) ++found;
    EXPECT_GE(found, 490u);  // flushed every 7 pages, and 500 were put before the signal
    EXPECT_EQ(c->stats().entries, found) << "a page after the first missing one";
    Put(c.get(), 999999);
    ASSERT_TRUE(c->Flush().ok());
    EXPECT_TRUE(Has(c.get(), 999999));
  }
}

TEST_F(PageCacheTest, OneProcessAtATime) {
  auto c = Open();
  ASSERT_NE(c, nullptr);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // another process: refused while the first holds the directory
    auto again = PageCache::Open(dir_, 1 << 30);
    _exit(!again.ok() && again.status().message() ==
                             "cache " + dir_ +
                                 " is in use by another process (one gangmig process at a "
                                 "time may use a cache directory)"
              ? 0
              : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  c.reset();
  EXPECT_NE(Open(), nullptr);  // closed: free again
}

TEST_F(PageCacheTest, FlippedByteIsDetected) {
  {
    auto c = Open();
    for (uint32_t n = 0; n < 10; ++n) Put(c.get(), n);
  }
  std::string seg = dir_ + "/seg-00000001.pages";
  int fd = open(seg.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  off_t at = off_t(4 * kEntrySize + kEntryHeaderSize + 100);  // page 4, byte 100
  uint8_t b;
  ASSERT_EQ(pread(fd, &b, 1, at), 1);
  b ^= 0x01;
  ASSERT_EQ(pwrite(fd, &b, 1, at), 1);
  close(fd);
  auto c = Open();
  EXPECT_EQ(c->stats().corrupt, 1u);
  EXPECT_EQ(c->stats().entries, 9u);
  EXPECT_FALSE(Has(c.get(), 4));
  EXPECT_TRUE(Has(c.get(), 5));
}

TEST_F(PageCacheTest, DamageFoundOnReadIsAMiss) {
  auto c = Open();
  for (uint32_t n = 0; n < 100; ++n) Put(c.get(), n);
  ASSERT_TRUE(c->Flush().ok());
  int fd = open((dir_ + "/seg-00000001.pages").c_str(), O_RDWR);
  uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_EQ(pwrite(fd, junk, sizeof(junk), off_t(2 * kEntrySize + 24)), 8);  // page 2's key
  close(fd);
  EXPECT_FALSE(Has(c.get(), 2));
  EXPECT_EQ(c->stats().corrupt, 1u);
  EXPECT_EQ(c->stats().entries, 99u);
}

// The index in memory holds 16 bytes of each key: a key that shares them with a cached
// page but differs further on (a crafted or unlucky collision of the truncated hash) is
// a miss, never the other page.
TEST_F(PageCacheTest, TruncatedKeyTwinIsNeverResolvedToTheOtherPage) {
  auto c = Open();
  Key k = Put(c.get(), 1);
  ASSERT_TRUE(c->Flush().ok());
  Key twin = k;
  twin.bytes[31] ^= 0xff;
  Bytes out(kPageSize);
  EXPECT_TRUE(c->Contains(twin));  // the summary-level answer may say yes ...
  auto got = c->Get(twin, out.data());
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(*got);  // ... the content is decided by the whole key
  EXPECT_TRUE(Has(c.get(), 1));
}

TEST_F(PageCacheTest, RefusesADirectoryOthersCanRead) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
  chmod(dir_.c_str(), 0755);
  auto c = PageCache::Open(dir_, 1 << 20);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "cache directory " + dir_ +
                                      " is accessible by group or others (mode 0755); run `chmod "
                                      "700 " + dir_ + "`");
}

TEST_F(PageCacheTest, ImportAddsDistinctNonZeroPages) {
  std::string file = dir_ + ".img";
  {
    std::ofstream f(file, std::ios::binary);
    for (uint32_t n : {1u, 2u, 1u, 3u}) {
      Bytes p = Page(n);
      f.write(reinterpret_cast<const char*>(p.data()), std::streamsize(p.size()));
      Bytes zero(kPageSize);
      f.write(reinterpret_cast<const char*>(zero.data()), std::streamsize(zero.size()));
    }
    f.write("tail", 4);  // a last partial page counts, padded with zeros
  }
  auto c = Open();
  auto added = ImportFile(c.get(), file);
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(*added, 4u);
  EXPECT_TRUE(Has(c.get(), 3));
  unlink(file.c_str());
}

}  // namespace
}  // namespace gangmig::store
