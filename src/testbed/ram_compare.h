// Byte-for-byte comparison of guest RAM files (the memory-backend-file of a QemuVm), for
// checking that a migration reproduced the source's memory exactly, and page-content
// statistics for reports (the lower bounds of `gangmig bench`). Pages are 4 KiB, the x86
// guest page size.
#pragma once

#include <cstddef>
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

struct DistinctOptions {
  bool compress = false;            // also measure DistinctPages::compressed_bytes
  int zstd_level = 1;               // as the sender's CompressionOptions::level
  size_t piece_bytes = 256 * 1024;  // as the sender's record bodies (wire::RecordWriter)
};

struct DistinctPages {
  uint64_t pages = 0;  // distinct non-zero page contents, as CountDistinctNonZeroPages
  // Those pages concatenated in the order first found (file by file, offset by offset),
  // cut into pieces of piece_bytes, each compressed with zstd at zstd_level, a piece
  // counted raw when zstd does not shrink it (as the sender does); 0 unless compress.
  uint64_t compressed_bytes = 0;
};

// CountDistinctNonZeroPages and, in the same pass, what those pages compress to: the
// least a scheme that sends each distinct page once, compressed as gangmig compresses
// record bodies, puts on the link for the pages.
Result<DistinctPages> MeasureDistinctNonZeroPages(const std::vector<std::string>& files,
                                                  const DistinctOptions& options = {});

}  // namespace gangmig::testbed
