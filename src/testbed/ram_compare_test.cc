#include "testbed/ram_compare.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace gangmig::testbed {
namespace {

class TestbedRamCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gangmig-ram-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string dir_;
};

std::string Page(char fill) { return std::string(kRamPageSize, fill); }

TEST_F(TestbedRamCompareTest, EqualFiles) {
  std::string content = Page('a') + Page(0) + Page('b');
  auto diff = CompareRamFiles(Write("a", content), Write("b", content));
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  EXPECT_EQ(diff->bytes_compared, 3 * kRamPageSize);
  EXPECT_EQ(diff->differing_pages, 0u);
  EXPECT_EQ(diff->first_diff_offset, kNoDiff);
}

TEST_F(TestbedRamCompareTest, CountsDifferingPages) {
  std::string a = Page('a') + Page('b') + Page('c') + Page('d') + "tail";
  std::string b = a;
  b[kRamPageSize + 17] = 'x';        // page 1
  b[3 * kRamPageSize + 4095] = 'x';  // page 3, last byte
  b[4 * kRamPageSize + 2] = 'x';     // the partial last page
  auto diff = CompareRamFiles(Write("a", a), Write("b", b));
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  EXPECT_EQ(diff->bytes_compared, a.size());
  EXPECT_EQ(diff->differing_pages, 3u);
  EXPECT_EQ(diff->first_diff_offset, kRamPageSize);
}

TEST_F(TestbedRamCompareTest, SizeMismatchAndMissingFileAreErrors) {
  std::string a = Write("a", Page('a'));
  auto diff = CompareRamFiles(a, Write("b", Page('a') + Page('a')));
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.status().message(),
            "compare RAM: sizes differ: " + a + " has 4096 bytes, " + dir_ + "/b has 8192");
  diff = CompareRamFiles(a, dir_ + "/missing");
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.status().message(),
            "compare RAM: " + dir_ + "/missing: No such file or directory");
}

TEST_F(TestbedRamCompareTest, EmptyFilesAreEqual) {
  auto diff = CompareRamFiles(Write("a", ""), Write("b", ""));
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  EXPECT_EQ(diff->bytes_compared, 0u);
  EXPECT_EQ(diff->differing_pages, 0u);
}

TEST_F(TestbedRamCompareTest, CountDistinctNonZeroPages) {
  std::string a = Write("a", Page('a') + Page(0) + Page('b') + Page('a'));
  std::string b = Write("b", Page('b') + Page('c') + Page(0));
  auto n = CountDistinctNonZeroPages({a, b});
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 3u);  // a, b, c
  n = CountDistinctNonZeroPages({a});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_FALSE(CountDistinctNonZeroPages({a, dir_ + "/missing"}).ok());
}

TEST_F(TestbedRamCompareTest, MeasureDistinctNonZeroPagesCompressesEachPageOnce) {
  std::string a = Write("a", Page('a') + Page(0) + Page('b') + Page('a'));
  std::string b = Write("b", Page('b') + Page('c') + Page(0));
  auto plain = MeasureDistinctNonZeroPages({a, b});
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(plain->pages, 3u);
  EXPECT_EQ(plain->compressed_bytes, 0u);  // not asked for
  DistinctOptions z{.compress = true};
  auto both = MeasureDistinctNonZeroPages({a, b}, z);
  ASSERT_TRUE(both.ok()) << both.status().message();
  EXPECT_EQ(both->pages, 3u);
  EXPECT_GT(both->compressed_bytes, 0u);
  EXPECT_LT(both->compressed_bytes, 3 * kRamPageSize);
  // The same distinct pages in the same order, without the repeats: the same bytes.
  auto once = MeasureDistinctNonZeroPages({Write("c", Page('a') + Page('b') + Page('c'))}, z);
  ASSERT_TRUE(once.ok());
  EXPECT_EQ(once->compressed_bytes, both->compressed_bytes);
  EXPECT_FALSE(MeasureDistinctNonZeroPages({a, dir_ + "/missing"}, z).ok());
}

TEST_F(TestbedRamCompareTest, IncompressiblePiecesCountRaw) {
  std::string random;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < 3 * kRamPageSize; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    random.push_back(char(x));
  }
  DistinctOptions z{.compress = true, .piece_bytes = 2 * kRamPageSize};
  auto m = MeasureDistinctNonZeroPages({Write("r", random)}, z);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->pages, 3u);
  EXPECT_EQ(m->compressed_bytes, 3 * kRamPageSize);  // two pieces, neither shrinks
}

}  // namespace
}  // namespace gangmig::testbed
