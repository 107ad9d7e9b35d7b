// The frame decoder and the destination core (page resolution, ZFRAMES, DELTA) on an
// arbitrary verified record body, every feature agreed: errors, never a crash or a read
// outside what was sent.
#include <cstddef>
#include <cstdint>

#include "core/dest_core.h"
#include "wire/frame.h"

using namespace gangmig;

namespace {
struct Sink : core::DestCore::Output {
  uint64_t bytes = 0;
  Status OnStreamBytes(const wire::Frame&, ByteView b) override {
    bytes += b.size();
    return Status::Ok();
  }
  Status OnControl(const wire::Frame&) override { return Status::Ok(); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  core::DestCore core(wire::kFeaturesKnown);
  Sink sink;
  // The input is several bodies: a 0xff byte separates them.
  size_t start = 0;
  for (size_t i = 0; i <= size; ++i) {
    if (i < size && data[i] != 0xff) continue;
    ByteView body(data + start, i - start);
    start = i + 1;
    Status st = wire::ForEachFrameIn(body, "from sender",
                                     [&](const wire::Frame& f) { return core.OnFrame(f, &sink); });
    if (!st.ok()) break;
  }
  return 0;
}
