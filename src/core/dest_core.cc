// The destination core numbers distinct page contents 0, 1, 2, ... in the order PAGE and
// DELTA frames arrive on the one ordered connection (the order the sender assigned them),
// so a REF or a DELTA base needs only the id. Every id, length and run is checked before
// it is used; no frame can make the core read or write outside its store, and a
// ZFRAMES frame can never expand to more than one record body (its raw_len is checked
// against kMaxRecordBody before zstd runs, and zstd writes into exactly that much).
//
// A ZFRAMES frame is handled in two steps: Inflate (static, no core state, so it may run
// on any thread ahead of time) and OnInflated (in frame order, on the core's thread).
// The checks that need the core's state -- the frame's admission, zstd agreed -- run in
// OnInflated before the inflate result is even looked at, and OnFrame runs them before
// inflating; either way a frame gets the same error, and a receiver that inflates ahead
// does so only for frames these checks would accept (DestCore::zstd()).
#include "core/dest_core.h"

#include <cassert>
#include <string>

#include "encode/delta.h"

namespace gangmig::core {

DestCore::DestCore(uint16_t features, uint64_t max_store, const index::PageStore::Options& store)
    : features_(features), max_store_(max_store), store_(store), zstd_(wire::kMaxRecordBody) {}

// What any frame from the sender must pass before it is looked at.
Status DestCore::Admit(const wire::Frame& f) const {
  if (!wire::MaySend(wire::Peer::kSender, f.type))
    return Status::Error(std::string("sender sent a ") + wire::FrameTypeName(f.type) +
                         " frame, which only a receiver may send");
  if (goodbye_)
    return Status::Error(std::string("sender sent a ") + wire::FrameTypeName(f.type) +
                         " frame after GOODBYE");
  if ((f.type == wire::FrameType::kCref || f.type == wire::FrameType::kFill) && !cache())
    return Status::Error(std::string("sender sent a ") + wire::FrameTypeName(f.type) +
                         " frame, but the page cache was not negotiated");
  return Status::Ok();
}

// A ZFRAMES frame's own check, made before anything is decompressed.
Status DestCore::AdmitZFrames() const {
  if (!zstd()) return Status::Error("sender sent a ZFRAMES frame, but zstd was not negotiated");
  return Status::Ok();
}

Status DestCore::OnFrame(const wire::Frame& f, Output* out) {
  using wire::FrameType;
  GANGMIG_RETURN_IF_ERROR(Admit(f));
  switch (f.type) {
    case FrameType::kZFrames: {
      GANGMIG_RETURN_IF_ERROR(AdmitZFrames());
      Status st = Inflate(f, &zstd_, &expanded_);
      st = OnInflated(f, st, expanded_, out);
      expanded_.clear();
      return st;
    }
    case FrameType::kData:
      return out->OnStreamBytes(f, f.payload);
    case FrameType::kPage:
    case FrameType::kRef:
    case FrameType::kDelta:
    case FrameType::kCref: {
      auto page = Page(f, out);
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

Status DestCore::Inflate(const wire::Frame& f, encode::ZstdDecompressor* zstd, Bytes* frames) {
  assert(f.type == wire::FrameType::kZFrames && f.payload.size() >= wire::kMinZFramesLen);
  assert(zstd->max_output() == wire::kMaxRecordBody);
  size_t raw_len = LoadBE32(f.payload.data());
  Status st = zstd->Decompress(f.payload.subspan(wire::kZFramesRawLenSize), raw_len, frames);
  if (!st.ok()) frames->clear();
  return st.WithContext("ZFRAMES");
}

Status DestCore::OnInflated(const wire::Frame& f, const Status& inflated, ByteView frames,
                            Output* out) {
  GANGMIG_RETURN_IF_ERROR(BeginInflated(f, inflated, frames));
  return Expand(frames, out);
}

Status DestCore::BeginInflated(const wire::Frame& f, const Status& inflated, ByteView frames) {
  assert(f.type == wire::FrameType::kZFrames);
  GANGMIG_RETURN_IF_ERROR(Admit(f));
  GANGMIG_RETURN_IF_ERROR(AdmitZFrames());
  GANGMIG_RETURN_IF_ERROR(inflated);
  ++stats_.zframes;
  stats_.zframes_bytes += wire::kZFramesHeaderSize + f.payload.size();
  stats_.zframes_raw += frames.size();
  return Status::Ok();
}

Status DestCore::OnInflatedFrame(const wire::Frame& inner, Output* out) {
  if (inner.type == wire::FrameType::kZFrames) return Status::Error("ZFRAMES inside ZFRAMES");
  return OnFrame(inner, out);
}

// The frames of an inflated ZFRAMES frame, in order.
Status DestCore::Expand(ByteView frames, Output* out) {
  wire::FrameReader reader(frames);
  wire::Frame inner;
  for (;;) {
    auto next = reader.Next(&inner);
    if (!next.ok()) return next.status().WithContext("in ZFRAMES");
    if (!*next) return Status::Ok();
    GANGMIG_RETURN_IF_ERROR(OnInflatedFrame(inner, out));
  }
}

// Whether one more distinct page fits the session's store.
Status DestCore::MayStore() const {
  if (store_.size() == UINT32_MAX)
    return Status::Error("more than 2^32 - 1 distinct pages in one session");
  if ((uint64_t(store_.size()) + 1) * wire::kPageSize > max_store_)
    return Status::Error("session stores more than " + std::to_string(max_store_ >> 20) +
                         " MiB of distinct pages (receive --max-store)");
  return Status::Ok();
}

// Gives `page` the next id; the view returned is `page` itself.
Result<ByteView> DestCore::Store(ByteView page) {
  auto id = store_.Add(page);
  if (!id.ok()) return id.status();
  return page;
}

Result<ByteView> DestCore::Page(const wire::Frame& f, Output* out) {
  using wire::FrameType;
  if (f.type == FrameType::kDelta && !(features_ & wire::kFeatureDelta))
    return Status::Error("sender sent a DELTA frame, but delta was not negotiated");
  if (f.type != FrameType::kRef) GANGMIG_RETURN_IF_ERROR(MayStore());
  if (f.type == FrameType::kPage) {
    ++stats_.pages;
    return Store(f.payload);
  }
  if (f.type == FrameType::kCref) {
    auto page = out->OnCref(crefs_, f.payload);
    if (!page.ok()) return page.status();
    ++crefs_;
    ++stats_.crefs;
    return Store(*page);
  }
  if (f.page_id >= store_.size())
    return Status::Error(std::string(wire::FrameTypeName(f.type)) + " to page id " +
                         std::to_string(f.page_id) + " but only " + std::to_string(store_.size()) +
                         " pages were sent");
  auto stored = store_.Get(f.page_id);
  if (!stored.ok()) return stored.status();
  if (f.type == FrameType::kRef) {
    ++stats_.refs;
    return stored;
  }
  Status st = encode::ApplyDelta(*stored, f.payload, page_);
  if (!st.ok()) return st.WithContext("DELTA against page id " + std::to_string(f.page_id));
  ++stats_.deltas;
  return Store(ByteView(page_, sizeof(page_)));
}

}  // namespace gangmig::core
