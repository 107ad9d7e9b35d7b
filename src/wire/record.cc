// Records: length-prefixed AES-256-GCM ciphertexts with their 16-byte tag (record_cipher.cc).
//
// The tag covers be32 body_len (associated data) and the ciphertext under the nonce seq,
// where seq counts the records of this direction from 0 (record_cipher.cc). The sequence number is never sent: both
// ends count. So a record that is dropped, repeated, reordered, moved to the other
// direction (other key) or to another connection (other nonces, other keys) fails its
// tag, as does any change to its bytes.
// Binding the length into the tag means a cut record cannot pass for a shorter one.
//
// The opener checks the length as soon as its four bytes are in, before waiting for the
// body: a corrupted or hostile length is refused at once instead of making us buffer up to
// 4 GiB. It returns a body only after the tag matched (compared in constant time), so no
// unauthenticated byte ever reaches the frame parser.
//
// Cost: one AES-GCM pass per record over the bytes where they lie (see record_cipher.cc
// for the speed); the opener decrypts straight from its buffer into the caller's body. Buffering is a vector with a read position; consumed bytes are dropped when
// they make up at least half of the buffer, so each byte moves O(1) times.
//
// Batching frames into records (RecordWriter).
//
// The caller appends encoded frames straight into the pending body (no copy through an
// intermediate buffer) and calls SealIfFull() after each frame. When the body has reached
// the target size it becomes one record. The only subtle case is a large frame arriving
// on a body that is already well filled: target (256 KiB) + a 1 MiB DATA frame would
// exceed kMaxRecordBody. The writer therefore remembers the body size at its previous
// call, which is a frame boundary, and cuts there first: the old frames become one record
// and the big frame starts the next. If even that does not bring the body under the limit
// (many frames appended without a call in between), it walks the body with FrameReader
// to find the last frame boundary that fits. Since no frame is larger than kMaxFrameSize
// <= kMaxRecordBody, a cut always exists.
#include "wire/record.h"

#include <cassert>
#include <string>

#include "wire/frame.h"

namespace gangmig::wire {
void RecordSealer::Seal(ByteView body, Bytes* out) {
  size_t start = out->size();
  out->resize(start + kRecordHeaderSize);
  PutBytes(out, body);
  SealTail(out, start);
}

void RecordSealer::SealTail(Bytes* buf, size_t start) {
  size_t len = buf->size() - start - kRecordHeaderSize;
  assert(len >= 1 && len <= kMaxRecordBody);
  StoreBE32(buf->data() + start, uint32_t(len));
  RecordTag tag = cipher_.Seal(seq_, ByteView(buf->data() + start, kRecordHeaderSize),
                               buf->data() + start + kRecordHeaderSize, len);
  PutBytes(buf, tag);
  seq_++;
}

void RecordOpener::Feed(ByteView data) {
  if (!error_.ok()) return;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + ptrdiff_t(pos_));
    pos_ = 0;
  }
  PutBytes(&buf_, data);
}

Result<bool> RecordOpener::Next(Bytes* body) {
  if (!error_.ok()) return error_;
  size_t have = buf_.size() - pos_;
  if (have < kRecordHeaderSize) return false;
  const uint8_t* p = buf_.data() + pos_;
  uint32_t len = LoadBE32(p);
  if (len == 0 || len > kMaxRecordBody) {
    return Fail("bad length " + std::to_string(len) + " (max " + std::to_string(kMaxRecordBody) +
                ")");
  }
  if (have < kRecordOverhead + len) return false;
  body->resize(len);
  if (!cipher_.Open(seq_, ByteView(p, kRecordHeaderSize), p + kRecordHeaderSize, len,
                    body->data(), ByteView(p + kRecordHeaderSize + len, kRecordTagSize))) {
    body->clear();  // never let an unauthenticated plaintext out
    return Fail("bad authentication tag");
  }
  pos_ += kRecordOverhead + len;
  seq_++;
  return true;
}

Status RecordOpener::AtEnd() const {
  if (!error_.ok()) return error_;
  size_t have = buf_.size() - pos_;
  if (have == 0) return Status::Ok();
  std::string want = "at least " + std::to_string(kRecordOverhead + 1);
  if (have >= kRecordHeaderSize) {
    want = std::to_string(kRecordOverhead + LoadBE32(buf_.data() + pos_));
  }
  return Status::Error("record " + std::to_string(seq_) +
                       ": stream ended inside the record (have " + std::to_string(have) + " of " +
                       want + " bytes)");
}

Status RecordOpener::Fail(std::string message) {
  error_ = Status::Error("record " + std::to_string(seq_) + ": " + message);
  buf_.clear();
  pos_ = 0;
  return error_;
}

// ---- RecordWriter --------------------------------------------------------------------

RecordWriter::RecordWriter(RecordSealer* sealer, size_t target_body)
    : sealer_(sealer), target_(target_body) {
  assert(target_body >= 1 && target_body <= kMaxRecordBody);
  Reset();
}

RecordWriter::RecordWriter(BodySink* sink, size_t target_body) : sink_(sink), target_(target_body) {
  assert(target_body >= 1 && target_body <= kMaxRecordBody);
  Reset();
}

void RecordWriter::SealIfFull(Bytes* out) {
  SealOversized(out);
  if (pending() >= target_) SealWhole(out);
  boundary_ = pending();
}

void RecordWriter::Flush(Bytes* out) {
  SealOversized(out);
  if (pending() > 0) SealWhole(out);
  boundary_ = 0;
}

void RecordWriter::SealOversized(Bytes* out) {
  while (pending() > kMaxRecordBody) SealPrefix(CutPoint(), out);
}

// The largest frame boundary in the body that is at most kMaxRecordBody (and > 0).
size_t RecordWriter::CutPoint() const {
  if (boundary_ > 0 && boundary_ <= kMaxRecordBody) return boundary_;
  FrameReader reader(ByteView(pending_.data() + kRecordHeaderSize, pending()));
  size_t cut = 0;
  Frame f;
  while (reader.offset() <= kMaxRecordBody) {
    cut = reader.offset();
    Result<bool> r = reader.Next(&f);
    if (!r.ok() || !*r) break;
  }
  if (reader.offset() <= kMaxRecordBody) cut = reader.offset();
  assert(cut > 0 && "RecordWriter: pending body holds an invalid or oversized frame");
  return cut > 0 ? cut : kMaxRecordBody;  // broken contract: the peer will refuse it
}

// With a transform that took the body: seals what it wrote instead (a copy, but of a
// smaller body).
bool RecordWriter::Transformed(ByteView body, Bytes* out) {
  if (transform_ == nullptr) return false;
  transformed_.clear();
  if (!transform_->Transform(body, &transformed_)) return false;
  assert(!transformed_.empty() && transformed_.size() < body.size());
  sealer_->Seal(transformed_, out);
  return true;
}

// Rare (a body grown past kMaxRecordBody): the first n body bytes are copied out.
void RecordWriter::SealPrefix(size_t n, Bytes* out) {
  auto body = pending_.begin() + ptrdiff_t(kRecordHeaderSize);
  if (sink_ != nullptr) {
    Bytes record = sink_->SpareBody();
    record.resize(kRecordHeaderSize);
    PutBytes(&record, ByteView(&*body, n));
    sink_->TakeBody(std::move(record));
  } else if (!Transformed(ByteView(&*body, n), out)) {
    sealer_->Seal(ByteView(&*body, n), out);
  }
  pending_.erase(body, body + ptrdiff_t(n));
  boundary_ = 0;
}

// The common case: the whole pending body becomes one record where it lies.
void RecordWriter::SealWhole(Bytes* out) {
  if (sink_ != nullptr) {
    sink_->TakeBody(std::move(pending_));
    pending_ = sink_->SpareBody();
    Reset();
    return;
  }
  if (Transformed(ByteView(pending_.data() + kRecordHeaderSize, pending()), out)) {
    pending_.resize(kRecordHeaderSize);  // keeps its capacity: the next body reuses it
    boundary_ = 0;
    return;
  }
  sealer_->SealTail(&pending_, 0);
  if (out->empty()) {
    out->swap(pending_);
  } else {
    PutBytes(out, pending_);
  }
  Reset();
}

// An empty body with the header reserved, and room for twice the target (so a caller
// that appends up to one target's worth between calls, as the sender does with its
// 256 KiB reads, never makes the buffer reallocate and copy). After a swap with a spare
// that already has the room, nothing is allocated.
void RecordWriter::Reset() {
  pending_.clear();
  pending_.reserve(2 * target_ + kRecordOverhead + 64 * 1024);
  pending_.resize(kRecordHeaderSize);
  boundary_ = 0;
}

}  // namespace gangmig::wire
