// Page id -> content, for a whole session: the receiver's store of every distinct page
// (a REF may name any of them) and the sender's verification copies. Ids are dense from
// 0 in the order pages are added.
//
// Memory is bounded: the newest `resident_bytes` of pages stay in RAM (2 MiB slabs, a
// ring); older slabs are written to a spill file (made with O_TMPFILE in `spill_dir`,
// so it has no name, is private to this process and disappears with it) and read back
// with pread when asked for. The kernel's page cache keeps a spilled page hot while RAM
// is free and gives it up under pressure instead of the process growing.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace gangmig::index {

class PageStore {
 public:
  static constexpr size_t kPageSize = 4096;
  static constexpr uint32_t kPagesPerSlab = 512;  // 2 MiB
  static constexpr size_t kSlabBytes = size_t{kPagesPerSlab} * kPageSize;

  struct Options {
    // Bytes of pages kept in RAM (rounded up to whole slabs, at least two). Past it the
    // oldest slab goes to the spill file. UINT64_MAX: everything stays in RAM.
    uint64_t resident_bytes = UINT64_MAX;
    // Directory for the spill file; required when resident_bytes is bounded, unless
    // `on_drop` is set.
    std::string spill_dir;
    // Set: past resident_bytes the oldest slab is not spilled but handed to on_drop
    // (its first id and its kPagesPerSlab pages) and then forgotten: Get of its ids is
    // an error, and first_resident_id() says which ids are still held.
    std::function<void(uint32_t first_id, const uint8_t* pages)> on_drop = nullptr;
  };

  PageStore() : PageStore(Options{}) {}
  explicit PageStore(const Options& options);
  ~PageStore();
  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;

  // Stores a copy of `page` under the next id. Errors: the spill file could not be made
  // or written ("spill file in DIR: ..."); the store is then unchanged.
  // REQUIRES: page.size() == kPageSize
  Result<uint32_t> Add(ByteView page);
  // The content of page `id`. The view is valid until the next Add or Get. Errors: the
  // spill file could not be read. REQUIRES: id < size()
  Result<ByteView> Get(uint32_t id);

  uint32_t size() const { return count_; }
  // Ids below this are in the spill file, or dropped (on_drop).
  uint32_t first_resident_id() const { return first_resident_ * kPagesPerSlab; }
  // Bytes of RAM held for pages (the resident slabs).
  uint64_t bytes_held() const { return uint64_t(allocated_) * kSlabBytes; }
  // Bytes of pages written to the spill file.
  uint64_t bytes_spilled() const { return options_.on_drop ? 0 : uint64_t(first_resident_) * kSlabBytes; }

 private:
  Status Spill();  // writes the oldest resident slab out (or drops it); its buffer becomes free

  Options options_;
  uint32_t ring_slabs_;  // resident slabs at most
  struct FreeSlab {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t[], FreeSlab>> ring_;  // slab s lives in ring_[s % n]
  uint32_t allocated_ = 0;       // buffers in ring_ allocated so far
  uint32_t first_resident_ = 0;  // slabs below this are in the spill file
  uint32_t count_ = 0;
  int spill_fd_ = -1;
  uint8_t scratch_[kPageSize];  // a page read back from the spill file
};

}  // namespace gangmig::index
