#include "base/alloc.h"

#include <malloc.h>

namespace gangmig {

void TuneAllocator() {
  // Keep batch-sized buffers on the heap and freed memory in the process, so a steady
  // stream reuses the same pages instead of faulting in new ones.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace gangmig
