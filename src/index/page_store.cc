// Slabs are 2 MiB and 2 MiB-aligned. They were once marked for transparent huge pages (one
// fault per slab instead of 512, a win on the warm micro path); in real runs on a VM host
// that made first touch ~5x dearer, so they no longer are (see Add). A bounded store
// allocates its ring once and reuses the buffers, so its RSS never grows past the ring
// (freeing and allocating 2 MiB blocks would let malloc keep them anyway).
#include "index/page_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace gangmig::index {

PageStore::PageStore(const Options& options) : options_(options) {
  uint64_t slabs = options.resident_bytes == UINT64_MAX
                       ? UINT32_MAX
                       : (options.resident_bytes + kSlabBytes - 1) / kSlabBytes;
  ring_slabs_ = uint32_t(std::clamp<uint64_t>(slabs, 2, UINT32_MAX));
}

PageStore::~PageStore() {
  if (spill_fd_ >= 0) close(spill_fd_);
}

Result<uint32_t> PageStore::Add(ByteView page) {
  uint32_t slab = count_ / kPagesPerSlab;
  if (count_ % kPagesPerSlab == 0) {
    if (slab - first_resident_ == ring_slabs_) GANGMIG_RETURN_IF_ERROR(Spill());
    if (slab - first_resident_ >= allocated_) {
      auto* buf = static_cast<uint8_t*>(std::aligned_alloc(kSlabBytes, kSlabBytes));
      if (buf == nullptr) std::abort();  // out of memory
      // No MADV_HUGEPAGE: on a VM host a fresh huge page cost ~8 us per 4 KiB (direct
      // compaction, host memory never touched) against ~1.6 us for 4 KiB faults, and the
      // demo's gangmig CPU fell ~20% without it (docs/BENCHMARKS.md, issue 9 item 6).
      if (ring_slabs_ == UINT32_MAX) {
        ring_.emplace_back(buf);  // unbounded: slab s is ring_[s]
      } else {
        if (ring_.empty()) ring_.resize(ring_slabs_);
        ring_[slab % ring_slabs_].reset(buf);
      }
      ++allocated_;
    }
  }
  uint8_t* slab_bytes = ring_[ring_slabs_ == UINT32_MAX ? slab : slab % ring_slabs_].get();
  std::memcpy(slab_bytes + (count_ % kPagesPerSlab) * kPageSize, page.data(), kPageSize);
  return count_++;
}

Result<ByteView> PageStore::Get(uint32_t id) {
  uint32_t slab = id / kPagesPerSlab;
  size_t at = (id % kPagesPerSlab) * kPageSize;
  if (slab >= first_resident_) {
    uint8_t* bytes = ring_[ring_slabs_ == UINT32_MAX ? slab : slab % ring_slabs_].get();
    return ByteView(bytes + at, kPageSize);
  }
  if (options_.on_drop) return Status::Error("page " + std::to_string(id) + " was dropped");
  off_t off = off_t(id) * off_t(kPageSize);
  for (size_t got = 0; got < kPageSize;) {
    ssize_t n = pread(spill_fd_, scratch_ + got, kPageSize - got, off + off_t(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status::Error("spill file in " + options_.spill_dir + ": reading page " +
                           std::to_string(id) + ": " + (n < 0 ? strerror(errno) : "short file"));
    got += size_t(n);
  }
  return ByteView(scratch_, kPageSize);
}

Status PageStore::Spill() {
  if (options_.on_drop) {
    options_.on_drop(first_resident_ * kPagesPerSlab, ring_[first_resident_ % ring_slabs_].get());
    ++first_resident_;
    return Status::Ok();
  }
  auto fail = [this](const std::string& what) {
    return Status::Error("spill file in " + options_.spill_dir + ": " + what + ": " +
                         strerror(errno) + " (choose another --spill-dir, or raise --page-ram)");
  };
  if (spill_fd_ < 0) {
    if (options_.spill_dir.empty()) {
      errno = EINVAL;
      return fail("no directory given");
    }
    spill_fd_ = open(options_.spill_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (spill_fd_ < 0) {
      // Some file systems have no O_TMPFILE: a named file, unlinked at once.
      std::string tmpl = options_.spill_dir + "/gangmig-spill-XXXXXX";
      spill_fd_ = mkostemp(tmpl.data(), O_CLOEXEC);
      if (spill_fd_ < 0) return fail("create");
      unlink(tmpl.c_str());
    }
  }
  const uint8_t* bytes = ring_[first_resident_ % ring_slabs_].get();
  off_t off = off_t(first_resident_) * off_t(kSlabBytes);
  for (size_t put = 0; put < kSlabBytes;) {
    ssize_t n = pwrite(spill_fd_, bytes + put, kSlabBytes - put, off + off_t(put));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return fail("write");
    }
    put += size_t(n);
  }
  ++first_resident_;
  return Status::Ok();
}

}  // namespace gangmig::index
