// Byte-for-byte comparison of guest RAM files (the memory-backend-file of a QemuVm), for
// checking that a migration reproduced the source's memory exactly, and page-content
// statistics for reports. Pages are 4 KiB, the x86 guest page size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace gangmig::testbed {

inline constexpr uint64_t kRamPageSize = 4096;
inline constexpr uint64_t kNoDiff = UINT64_MAX;  // RamDiff::first_diff_offset when equal

struct RamDiff {
  uint64_t bytes_compared = 0;
  uint64_t differing_pages = 0;
  uint64_t first_diff_offset = kNoDiff;  // byte offset of the first differing page
};

// Compares files `a` and `b` page by page (a last partial page counts as a page). Error
// if either cannot be read or their sizes differ.
Result<RamDiff> CompareRamFiles(const std::string& a, const std::string& b);

// Number of distinct page contents (SHA-256 per 4 KiB page) over all `files`, not
// counting all-zero pages.
Result<uint64_t> CountDistinctNonZeroPages(const std::vector<std::string>& files);

}  // namespace gangmig::testbed
