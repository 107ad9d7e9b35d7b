// Allocator tuning for the data path. Buffers of a few hundred KiB are allocated and
// freed for every batch; with glibc's defaults each one is a fresh mmap()/munmap() and
// page faults on first touch. Call once at the start of main().
#pragma once

namespace gangmig {

void TuneAllocator();

}  // namespace gangmig
