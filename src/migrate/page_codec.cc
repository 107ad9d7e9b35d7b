// The encoder asks the session's PageIndex whether each page's content has crossed
// already; the resolver mirrors the index's numbering by storing PAGE contents in arrival
// order. The index proves equality (byte comparison or SHA-256) before it returns an
// existing id, so a REF can only ever resolve to the exact bytes the sender saw.
#include "migrate/page_codec.h"

#include <algorithm>
#include <string>

namespace gangmig::migrate {

void PageEncoder::OnPage(ByteView page) {
  FlushLiteral();
  auto look = ctx_->index.FindOrInsert(page);
  if (look.inserted) {
    wire::AppendPage(ctx_->frames, vm_, channel_, page);
    ++counters_->pages_sent;
  } else {
    wire::AppendRef(ctx_->frames, vm_, channel_, look.id);
    ++counters_->pages_referenced;
  }
}

void PageEncoder::FlushLiteral() {
  for (size_t at = 0; at < literal_.size(); at += wire::kMaxDataLen) {
    size_t n = std::min(wire::kMaxDataLen, literal_.size() - at);
    wire::AppendData(ctx_->frames, vm_, channel_, ByteView(literal_.data() + at, n));
  }
  literal_.clear();
}

Result<ByteView> PageResolver::Resolve(const wire::Frame& f) {
  if (f.type == wire::FrameType::kPage) return store_.Get(store_.Add(f.payload));
  if (f.page_id >= store_.size())
    return Status::Error("REF to page id " + std::to_string(f.page_id) + " but only " +
                         std::to_string(store_.size()) + " pages were sent");
  return store_.Get(f.page_id);
}

}  // namespace gangmig::migrate
