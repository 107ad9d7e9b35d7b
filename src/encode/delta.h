// Delta encoding of a page against an earlier version of the same page that the receiver
// already holds (the paper's follow-up "sub-page dedup"; the idea of QEMU's XBZRLE).
// Pure: pages in, bytes out.
//
// Format of a delta (docs/WIRE.md, "DELTA frames"): a sequence of runs until the end of
// the bytes, each `uvarint skip | uvarint n | n bytes`: keep `skip` bytes of the base,
// then take `n` bytes literally. What follows the last run is the base unchanged. A
// uvarint is LEB128 (7 bits a byte, low first) of at most 2 bytes; n >= 1; every run ends
// inside the page.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"

namespace gangmig::encode {

inline constexpr size_t kDeltaPageSize = 4096;

// Appends the delta that turns `base` into `page` to *out and returns its size, or
// returns 0 and leaves *out as it was when the delta would be longer than `max_len`
// bytes (or the pages are equal). REQUIRES: base and page are kDeltaPageSize bytes.
size_t EncodeDelta(ByteView base, ByteView page, size_t max_len, Bytes* out);

// Rebuilds the page: copies `base` to `out` and applies `delta`. Errors name the byte
// of the delta where it went wrong ("run at byte 12 ends at 4100, past the page end").
// REQUIRES: base is kDeltaPageSize bytes; out has room for kDeltaPageSize bytes.
Status ApplyDelta(ByteView base, ByteView delta, uint8_t* out);

}  // namespace gangmig::encode
