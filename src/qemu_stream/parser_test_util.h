// Test helpers for StreamParser (header-only, used by the *_test.cc files of this layer):
// a sink that records what it receives, and drivers that feed a stream in chunks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "qemu_stream/stream_parser.h"

namespace gangmig::qemu_stream {

// Records every sink call; `out` is the concatenation the parser promises equals its input.
class RecordingSink : public StreamSink {
 public:
  void OnLiteral(ByteView bytes) override {
    if (bytes.empty()) bad_calls++;
    literal_calls++;
    PutBytes(&out, bytes);
  }
  void OnPage(ByteView page) override {
    if (page.size() != kPageSize) bad_calls++;
    page_ptrs.push_back(page.data());
    pages.emplace_back(page.begin(), page.end());
    PutBytes(&out, page);
  }

  Bytes out;
  std::vector<Bytes> pages;
  std::vector<const uint8_t*> page_ptrs;  // where each OnPage span pointed
  size_t literal_calls = 0;
  size_t bad_calls = 0;  // empty literals or pages of the wrong size
};

struct ParseOutcome {
  RecordingSink sink;
  ParseMode mode = ParseMode::kParsing;
  std::string reason;
  ParserStats stats;
};

// Feeds `in` in pieces whose sizes come from `next_size` (called until the input is used
// up; sizes are clamped to what is left), then calls Finish.
template <typename NextSize>
ParseOutcome ParseWith(ByteView in, NextSize next_size) {
  ParseOutcome o;
  StreamParser parser(&o.sink);
  size_t pos = 0;
  while (pos < in.size()) {
    size_t n = std::min(std::max<size_t>(next_size(), 1), in.size() - pos);
    parser.Feed(in.subspan(pos, n));
    pos += n;
  }
  parser.Finish();
  o.mode = parser.mode();
  o.reason = parser.fallback_reason();
  o.stats = parser.stats();
  return o;
}

inline ParseOutcome ParseInChunksOf(ByteView in, size_t chunk) {
  return ParseWith(in, [chunk] { return chunk; });
}

inline ParseOutcome ParseWhole(ByteView in) { return ParseInChunksOf(in, in.size() + 1); }

// Random chunk sizes: mostly small (headers split everywhere), sometimes page-sized or big.
inline ParseOutcome ParseRandomChunks(ByteView in, uint32_t seed, size_t max_chunk = 70000) {
  std::mt19937 rng(seed);
  return ParseWith(in, [&rng, max_chunk] {
    switch (rng() % 4) {
      case 0:
        return size_t(1 + rng() % 16);
      case 1:
        return size_t(1 + rng() % 5000);
      default:
        return size_t(1 + rng() % max_chunk);
    }
  });
}

}  // namespace gangmig::qemu_stream
