// The destination core numbers distinct page contents 0, 1, 2, ... in the order PAGE and
// DELTA frames arrive on the one ordered connection (the order the sender assigned them),
// so a REF or a DELTA base needs only the id. Every id, length and run is checked before
// it is used; no frame can make the core read or write outside its store, and a
// ZFRAMES frame can never expand to more than one record body (its raw_len is checked
// against kMaxRecordBody before zstd runs, and zstd writes into exactly that much).
#include "core/dest_core.h"

#include <string>

#include "encode/delta.h"

namespace gangmig::core {

DestCore::DestCore(uint16_t features) : features_(features), zstd_(wire::kMaxRecordBody) {}

Status DestCore::OnFrame(const wire::Frame& f, Output* out) {
  using wire::FrameType;
  if (!wire::MaySend(wire::Peer::kSender, f.type))
    return Status::Error(std::string("sender sent a ") + wire::FrameTypeName(f.type) +
                         " frame, which only a receiver may send");
  if (goodbye_)
    return Status::Error(std::string("sender sent a ") + wire::FrameTypeName(f.type) +
                         " frame after GOODBYE");
  switch (f.type) {
    case FrameType::kZFrames:
      return Expand(f, out);
    case FrameType::kData:
      return out->OnStreamBytes(f, f.payload);
    case FrameType::kPage:
    case FrameType::kRef:
    case FrameType::kDelta: {
      auto page = Page(f);
      if (!page.ok()) return page.status();
      return out->OnStreamBytes(f, *page);
    }
    case FrameType::kGoodbye:
      goodbye_ = true;
      return out->OnControl(f);
    default:
      return out->OnControl(f);
  }
}

Status DestCore::Expand(const wire::Frame& f, Output* out) {
  if (!(features_ & wire::kFeatureZstd))
    return Status::Error("sender sent a ZFRAMES frame, but zstd was not negotiated");
  size_t raw_len = LoadBE32(f.payload.data());
  Status st = zstd_.Decompress(f.payload.subspan(wire::kZFramesRawLenSize), raw_len, &expanded_);
  if (!st.ok()) {
    expanded_.clear();
    return st.WithContext("ZFRAMES");
  }
  ++stats_.zframes;
  stats_.zframes_bytes += wire::kZFramesHeaderSize + f.payload.size();
  stats_.zframes_raw += raw_len;
  wire::FrameReader reader(expanded_);
  wire::Frame inner;
  for (;;) {
    auto next = reader.Next(&inner);
    if (!next.ok()) st = next.status().WithContext("in ZFRAMES");
    if (!next.ok() || !*next) break;
    if (inner.type == wire::FrameType::kZFrames) {
      st = Status::Error("ZFRAMES inside ZFRAMES");
      break;
    }
    st = OnFrame(inner, out);
    if (!st.ok()) break;
  }
  expanded_.clear();
  return st;
}

Result<ByteView> DestCore::Page(const wire::Frame& f) {
  using wire::FrameType;
  if (f.type == FrameType::kDelta && !(features_ & wire::kFeatureDelta))
    return Status::Error("sender sent a DELTA frame, but delta was not negotiated");
  if (f.type == FrameType::kPage) {
    ++stats_.pages;
    return store_.Get(store_.Add(f.payload));
  }
  if (f.page_id >= store_.size())
    return Status::Error(std::string(wire::FrameTypeName(f.type)) + " to page id " +
                         std::to_string(f.page_id) + " but only " + std::to_string(store_.size()) +
                         " pages were sent");
  if (f.type == FrameType::kRef) {
    ++stats_.refs;
    return store_.Get(f.page_id);
  }
  Status st = encode::ApplyDelta(store_.Get(f.page_id), f.payload, page_);
  if (!st.ok()) return st.WithContext("DELTA against page id " + std::to_string(f.page_id));
  ++stats_.deltas;
  return store_.Get(store_.Add(ByteView(page_, sizeof(page_))));
}

}  // namespace gangmig::core
