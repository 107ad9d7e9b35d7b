// The record layer: after the handshake, each direction of the connection is a sequence
// of records `be32 body_len | ciphertext | tag[16]`: the body encrypted and authenticated
// with AES-256-GCM (record_cipher.h) under that direction's session key, with the
// record's sequence number as nonce and its length as associated data. RecordSealer
// makes records; RecordOpener checks, decrypts and unwraps them from a byte stream that
// arrives in arbitrary pieces. Both are pure (no sockets). RecordWriter batches frames
// into records of a target size. Format: docs/WIRE.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "wire/record_cipher.h"
#include "wire/wire_format.h"

namespace gangmig::wire {

// Seals bodies into records for one direction. Sequence numbers start at 0.
class RecordSealer {
 public:
  // `key` is the direction's session key (SessionKeys::c2s or ::s2c); it is copied.
  // REQUIRES: key.size() == kSessionKeySize
  explicit RecordSealer(ByteView key) : cipher_(key) {}

  // Appends one record holding `body` to *out.
  // REQUIRES: 1 <= body.size() <= kMaxRecordBody
  void Seal(ByteView body, Bytes* out);
  // Turns the tail of *buf into a record without moving the body: the record starts at
  // `start` with kRecordHeaderSize reserved bytes (overwritten with the length) followed by
  // the body up to the end of *buf; the body is encrypted in place and the tag appended.
  // REQUIRES: 1 <= buf->size() - start - kRecordHeaderSize <= kMaxRecordBody
  void SealTail(Bytes* buf, size_t start);
  // Records sealed so far (= the sequence number of the next one).
  uint64_t records() const { return seq_; }

 private:
  RecordCipher cipher_;
  uint64_t seq_ = 0;
};

// Reassembles and verifies the records of one direction from the bytes as they arrive.
// The first failure (bad length, bad tag) is final: every later Next() returns it again.
class RecordOpener {
 public:
  // `key` is the direction's session key; it is copied. REQUIRES: 32 bytes, as above.
  explicit RecordOpener(ByteView key) : cipher_(key) {}

  // Buffers bytes received from the peer (ignored after a failure).
  void Feed(ByteView data);
  // true: *body holds the next verified, decrypted body; false: a whole record is not buffered
  // yet (Feed more); error: "record N: bad authentication tag" or
  // "record N: bad length L (max M)", N being the record's sequence number.
  Result<bool> Next(Bytes* body);
  // At end of stream: OK when no partial record is buffered, else
  // "record N: stream ended inside the record (have X of Y bytes)" (Y may read
  // "at least 21" when even the length is incomplete).
  Status AtEnd() const;

  uint64_t records() const { return seq_; }               // bodies returned so far
  size_t buffered() const { return buf_.size() - pos_; }  // bytes not yet returned

 private:
  Status Fail(std::string message);

  RecordCipher cipher_;
  Bytes buf_;
  size_t pos_ = 0;  // start of the first unreturned record in buf_
  uint64_t seq_ = 0;
  Status error_;
};

// Rewrites a record body before it is sealed: given the frames about to be sealed, it
// may write an equivalent, smaller body to *out (for example one ZFRAMES frame holding
// them compressed, encode/frame_compressor.h) and return true; false seals the body as
// it is. What it writes must decode to the same frames, in the same order.
class BodyTransform {
 public:
  virtual ~BodyTransform() = default;
  // REQUIRES on true: 1 <= out->size() < body.size()
  virtual bool Transform(ByteView body, Bytes* out) = 0;
};

// Takes whole record bodies from a RecordWriter instead of letting it seal them, for a
// stage that seals them elsewhere, in the same order (migrate/seal_pipeline.h compresses
// them on a worker pool first).
class BodySink {
 public:
  virtual ~BodySink() = default;
  // `record`: kRecordHeaderSize reserved bytes, then a body of 1..kMaxRecordBody bytes
  // of whole frames, not yet sealed. Bodies arrive in the order they must be sealed.
  virtual void TakeBody(Bytes record) = 0;
  // An empty buffer for the writer's next body (a recycled one keeps its capacity).
  virtual Bytes SpareBody() = 0;
};

// How many body bytes RecordWriter gathers before sealing a record. A sender policy,
// not part of the format: any body of 1..kMaxRecordBody bytes is valid.
inline constexpr size_t kDefaultTargetBody = 256 * 1024;

// Batches frames into records: frames are appended to a pending body, which is sealed
// once it reaches the target size (amortizing the 20-byte overhead and the MAC setup).
// A record never exceeds kMaxRecordBody and never splits a frame. Used by both peers.
// The pending buffer keeps room for the record header in front of the body, so a full
// body is sealed where it lies and handed over without a copy.
class RecordWriter {
 public:
  // `sealer` must outlive the writer. REQUIRES: 1 <= target_body <= kMaxRecordBody
  explicit RecordWriter(RecordSealer* sealer, size_t target_body = kDefaultTargetBody);
  // Hands bodies to `sink` (which must outlive the writer) instead of sealing them; the
  // `out` arguments below are then unused and may be null.
  explicit RecordWriter(BodySink* sink, size_t target_body = kDefaultTargetBody);

  // The pending record (a stable pointer): kRecordHeaderSize reserved bytes, then the
  // body. Append frames at its end with the Append* functions of frame.h, then call
  // SealIfFull(), after each frame or after a batch. Never change its first bytes.
  // REQUIRES: the body holds only whole, valid frames whenever SealIfFull/Flush is called.
  Bytes* frames() { return &pending_; }
  // Appends records to *out while the pending body is at least target_body bytes. When
  // *out is empty, a whole pending record is swapped in instead of copied, and *out's
  // old buffer becomes the next pending body: pass a spare with capacity (a sent
  // record's, net::OutQueue::TakeSpare) to avoid an allocation.
  void SealIfFull(Bytes* out);
  // Appends whatever is pending as records to *out (nothing if nothing is pending).
  void Flush(Bytes* out);

  // Body bytes pending (frames appended since the last record).
  size_t pending() const { return pending_.size() - kRecordHeaderSize; }
  // Every body sealed from now on goes through `transform` first (nullptr: none).
  // `transform` must outlive the writer or be replaced first.
  void SetTransform(BodyTransform* transform) { transform_ = transform; }

 private:
  bool Transformed(ByteView body, Bytes* out);
  void SealOversized(Bytes* out);
  size_t CutPoint() const;
  void SealPrefix(size_t n, Bytes* out);
  void SealWhole(Bytes* out);
  void Reset();

  RecordSealer* sealer_ = nullptr;
  BodySink* sink_ = nullptr;
  BodyTransform* transform_ = nullptr;
  Bytes transformed_;  // the transform's output, reused
  size_t target_;
  Bytes pending_;
  size_t boundary_ = 0;  // a frame boundary in pending_ (its size at the last call)
};

}  // namespace gangmig::wire
