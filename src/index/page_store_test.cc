#include "index/page_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

namespace gangmig::index {
namespace {

constexpr size_t kPage = PageStore::kPageSize;

Bytes PageOf(uint32_t i) {
  Bytes p(kPage, uint8_t(i * 7));
  p[0] = uint8_t(i >> 16);
  p[1] = uint8_t(i >> 8);
  p[2] = uint8_t(i);
  return p;
}

void ExpectPage(PageStore* store, uint32_t id) {
  auto got = store->Get(id);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(Bytes(got->begin(), got->end()), PageOf(id)) << "page " << id;
}

TEST(PageStoreTest, UnboundedKeepsEverythingInRam) {
  PageStore store;
  for (uint32_t i = 0; i < 1500; ++i) ASSERT_EQ(*store.Add(PageOf(i)), i);
  for (uint32_t i = 0; i < 1500; ++i) ExpectPage(&store, i);
  EXPECT_EQ(store.size(), 1500u);
  EXPECT_EQ(store.bytes_held(), 3 * PageStore::kSlabBytes);
  EXPECT_EQ(store.bytes_spilled(), 0u);
}

// With room for two slabs, the rest goes to the spill file and comes back intact, in any
// order, between adds; RAM stays at two slabs.
TEST(PageStoreTest, BoundedStoreSpillsAndReadsBack) {
  PageStore store({.resident_bytes = 2 * PageStore::kSlabBytes, .spill_dir = ::testing::TempDir()});
  for (uint32_t i = 0; i < 5000; ++i) {
    ASSERT_EQ(*store.Add(PageOf(i)), i);
    if (i % 97 == 0) ExpectPage(&store, i / 3);
  }
  EXPECT_EQ(store.bytes_held(), 2 * PageStore::kSlabBytes);
  EXPECT_EQ(store.bytes_spilled(), 8 * PageStore::kSlabBytes);  // slabs 0..7; 8 and 9 in RAM
  for (uint32_t i = 0; i < 5000; i += 13) ExpectPage(&store, i);
  ExpectPage(&store, 4999);
  ExpectPage(&store, 0);
}

// The spill file has no name: nothing is left in the directory, during or after.
TEST(PageStoreTest, SpillFileIsNeverVisible) {
  std::string dir = ::testing::TempDir() + "/spill-visible";
  mkdir(dir.c_str(), 0700);
  {
    PageStore store({.resident_bytes = 1, .spill_dir = dir});
    for (uint32_t i = 0; i < 2000; ++i) ASSERT_TRUE(store.Add(PageOf(i)).ok());
    EXPECT_GT(store.bytes_spilled(), 0u);
    EXPECT_EQ(rmdir(dir.c_str()), 0) << "the spill directory is not empty";
    ExpectPage(&store, 1);  // still readable: the file is open, only nameless
  }
}

TEST(PageStoreTest, SpillFailureIsAnErrorAndChangesNothing) {
  PageStore store({.resident_bytes = 1, .spill_dir = "/nonexistent/dir"});
  for (uint32_t i = 0; i < 1024; ++i) ASSERT_TRUE(store.Add(PageOf(i)).ok());
  auto added = store.Add(PageOf(1024));
  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.status().message().rfind("spill file in /nonexistent/dir: create: ", 0), 0u)
      << added.status().message();
  EXPECT_NE(added.status().message().find("--spill-dir"), std::string::npos);
  EXPECT_EQ(store.size(), 1024u);
  ExpectPage(&store, 0);
  ExpectPage(&store, 1023);
}

}  // namespace
}  // namespace gangmig::index
