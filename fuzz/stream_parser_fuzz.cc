// The QEMU stream parser on arbitrary bytes: it must never crash, and feeding the input
// whole or in pieces (sizes derived from the input) must give the same output: the
// same pages at the same locations, the same bytes between them, the same mode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "qemu_stream/stream_parser.h"

namespace {

using namespace gangmig;

// What the parser emits; adjacent literal runs are merged (chunking may split them).
struct Recorder : qemu_stream::StreamSink {
  std::vector<std::string> tokens;
  bool last_literal = false;
  void OnLiteral(ByteView b) override {
    if (!last_literal) tokens.emplace_back("L");
    tokens.back().append(reinterpret_cast<const char*>(b.data()), b.size());
    last_literal = true;
  }
  void OnPage(ByteView p, const qemu_stream::PageLocation& w) override {
    tokens.push_back("P" + std::to_string(w.block) + ":" + std::to_string(w.page) + ":");
    tokens.back().append(reinterpret_cast<const char*>(p.data()), p.size());
    last_literal = false;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  Recorder whole, pieces;
  qemu_stream::StreamParser a(&whole);
  a.Feed(in);
  a.Finish();
  qemu_stream::StreamParser b(&pieces);
  size_t step = 1 + (size ? data[0] % 97 : 0);
  for (size_t at = 0; at < size;) {
    size_t n = std::min(step, size - at);
    b.Feed(in.subspan(at, n));
    at += n;
    step = 1 + (step * 31 + 7) % 4099;
  }
  b.Finish();
  if (whole.tokens != pieces.tokens || a.mode() != b.mode() || a.stats().pages != b.stats().pages ||
      a.stats().zero_pages != b.stats().zero_pages)
    std::abort();  // chunking changed the output
  return 0;
}
