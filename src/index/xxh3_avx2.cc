// Only xxHash (C, header-only, every function static) is compiled here, and only C
// headers are included: nothing built with AVX2 can be shared with, and picked by the
// linker for, code that runs on CPUs without it. Same results as the SSE2 build.
#include "index/xxh3_avx2.h"

#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

namespace gangmig::index::internal {

void Xxh3Avx2(const void* data, size_t len, uint64_t seed, uint64_t out[2]) {
  XXH128_hash_t h = XXH3_128bits_withSeed(data, len, seed);
  out[0] = h.low64;
  out[1] = h.high64;
}

}  // namespace gangmig::index::internal
