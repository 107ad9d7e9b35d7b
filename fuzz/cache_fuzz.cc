// What a receiver says about its page cache, on arbitrary bytes, at the sender: SUMMARY
// pieces of any shape, NEEDs and CACHE_ACKs of any number. Errors, never a crash, an
// allocation beyond the summary's bound (2^30 bits), or a FILL for a CREF not kept.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/source_core.h"
#include "wire/frame.h"

using namespace gangmig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes frames;
  core::SourceCore source({.dest_cache = true, .max_unacked_crefs = 64}, &frames);
  source.OpenChannel(0, 0);
  wire::FrameReader reader(ByteView(data, size));
  wire::Frame f;
  for (;;) {
    auto next = reader.Next(&f);
    if (!next.ok() || !*next) break;
    Status st;
    if (f.type == wire::FrameType::kSummary) st = source.OnSummary(f.payload);
    if (f.type == wire::FrameType::kNeed) {
      bool kept = !source.KeptCref(f.page_id).empty();
      size_t before = frames.size();
      st = source.OnNeed(f.page_id);
      if (st.ok() != kept || (st.ok() && frames.size() != before + wire::kFillFrameSize))
        std::abort();
    }
    if (f.type == wire::FrameType::kCacheAck) source.OnCacheAck(f.page_id);
    (void)st;
    frames.clear();
  }
  return 0;
}
