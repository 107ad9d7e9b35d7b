// XXH3-128 compiled for AVX2 in a file of its own (xxh3_avx2.cc is built with -mavx2),
// so the rest of the program still runs on any x86-64. page_index.cc calls it only
// when the CPU reports AVX2. Internal to the index layer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gangmig::index::internal {

// XXH3-128 of data[0..len) under `seed`: out[0] = low 64 bits, out[1] = high 64 bits.
// REQUIRES: the CPU supports AVX2.
void Xxh3Avx2(const void* data, size_t len, uint64_t seed, uint64_t out[2]);

}  // namespace gangmig::index::internal
