#include "index/summary.h"

#include <gtest/gtest.h>

#include <random>

namespace gangmig::index {
namespace {

TEST(PageSummary, NoFalseNegativesFewFalsePositives) {
  PageSummary s = PageSummary::ForPages(100000);
  EXPECT_EQ(s.log2_bits(), 20);  // 2^20 >= 10 bits x 100000
  std::mt19937_64 rng(1);
  std::vector<uint64_t> in(100000);
  for (auto& h : in) s.Add(h = rng());
  for (uint64_t h : in) ASSERT_TRUE(s.MayContain(h));
  int fp = 0;
  for (int i = 0; i < 100000; ++i) fp += s.MayContain(rng());
  EXPECT_LT(fp, 1000);  // < 1%
}

TEST(PageSummary, ShipsInPiecesAndRefusesBadShapes) {
  PageSummary s = PageSummary::ForPages(10);
  s.Add(42);
  auto r = PageSummary::OfShape(s.probes(), s.log2_bits());
  ASSERT_TRUE(r.ok());
  size_t half = s.bits().size() / 2;
  ASSERT_TRUE(r->Merge(0, ByteView(s.bits().data(), half)).ok());
  ASSERT_TRUE(r->Merge(uint32_t(half), ByteView(s.bits().data() + half, half)).ok());
  EXPECT_TRUE(r->MayContain(42));
  EXPECT_EQ(r->Merge(uint32_t(s.bits().size()), ByteView(s.bits().data(), 1)).message(),
            "summary: bytes 8192..8193 past its 8192 bytes");
  EXPECT_EQ(PageSummary::OfShape(7, 40).status().message(), "summary: 2^40 bits (2^16 to 2^30)");
  EXPECT_EQ(PageSummary::OfShape(0, 20).status().message(), "summary: 0 probes (1-16)");
  EXPECT_FALSE(PageSummary().MayContain(42));
}

}  // namespace
}  // namespace gangmig::index
