// Frames: the messages inside a record body. A body holds one or more whole frames; a
// frame never spans records. The Append* functions encode one frame each (pure, append
// to a buffer); FrameReader walks the frames of one verified body and checks their
// structure (type, field ranges, lengths). Whether a frame makes sense at this point of
// the session (vm opened? page id already sent? right direction?) is the session layer's
// business. Format: docs/WIRE.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "wire/wire_format.h"

namespace gangmig::wire {

// ---- Encoding. REQUIRES for all: vm < kMaxVms, channel < kMaxChannels. ------------------

// REQUIRES: 1 <= json.size() <= kMaxJsonLen
void AppendVmOpen(Bytes* out, uint16_t vm, std::string_view json);
// REQUIRES: 1 <= data.size() <= kMaxDataLen
void AppendData(Bytes* out, uint16_t vm, uint8_t channel, ByteView data);
// REQUIRES: page.size() == kPageSize
void AppendPage(Bytes* out, uint16_t vm, uint8_t channel, ByteView page);
void AppendRef(Bytes* out, uint16_t vm, uint8_t channel, uint32_t page_id);
// REQUIRES: 1 <= delta.size() <= kMaxDeltaLen (the encoding is encode/delta.h's)
void AppendDelta(Bytes* out, uint16_t vm, uint8_t channel, uint32_t base_id, ByteView delta);
// Writes a ZFRAMES header (type | be32 len | be32 raw_len, kZFramesHeaderSize +
// kZFramesRawLenSize bytes) at `at`, for a zstd frame of compressed_len bytes that
// follows it and decompresses to raw_len bytes of frames.
// REQUIRES: compressed_len >= 1, 1 <= raw_len <= kMaxRecordBody
void PutZFramesHeader(uint8_t* at, size_t compressed_len, size_t raw_len);
void AppendChannelOpen(Bytes* out, uint16_t vm, uint8_t channel);
void AppendChannelEof(Bytes* out, uint16_t vm, uint8_t channel);
// REQUIRES: 1 <= data.size() <= kMaxDataLen
void AppendRpData(Bytes* out, uint16_t vm, uint8_t channel, ByteView data);
void AppendRpEof(Bytes* out, uint16_t vm, uint8_t channel);
// REQUIRES: 1 <= json.size() <= kMaxJsonLen
void AppendVmEvent(Bytes* out, uint16_t vm, std::string_view json);
// A reason longer than kMaxJsonLen bytes is cut to that length.
void AppendAbort(Bytes* out, std::string_view reason);
// Page cache (kFeatureCache). CREF: a page named by its SHA-256 `key` (32 bytes), which
// the receiver's cache may hold; it gets the next page id like PAGE. FILL: the content
// of CREF number `cref` (CREFs of the session counted from 0), sent when the receiver
// asked for it (NEED). SUMMARY: one piece of the receiver's Bloom filter. CACHE_ACK:
// every CREF numbered below `crefs` is resolved.
void AppendCref(Bytes* out, uint16_t vm, uint8_t channel, ByteView key);
void AppendFill(Bytes* out, uint32_t cref, ByteView page);
// REQUIRES: 1 <= bits.size() <= kMaxRecordBody - kSummaryHeaderSize - kSummaryFieldsSize
void AppendSummary(Bytes* out, uint8_t k, uint8_t log2_bits, uint32_t offset, ByteView bits);
void AppendNeed(Bytes* out, uint32_t cref);
void AppendCacheAck(Bytes* out, uint32_t crefs);
void AppendGoodbye(Bytes* out);
// A keepalive: either peer sends it after a while of sending nothing else.
void AppendPing(Bytes* out);

// ---- Decoding ------------------------------------------------------------------------

// The name used in docs and messages ("DATA", "RP_EOF", ...), or nullptr if unknown.
const char* FrameTypeName(FrameType type);

enum class Peer { kSender, kReceiver };
// Whether `from` may send frames of `type` (ABORT: both; GOODBYE: sender only; ...).
bool MaySend(Peer from, FrameType type);

// One decoded frame. Fields a type does not have stay 0.
struct Frame {
  FrameType type = FrameType::kGoodbye;
  uint16_t vm = 0;
  uint8_t channel = 0;
  uint32_t page_id = 0;  // REF: the page; DELTA: its base page
  ByteView payload;      // DATA/RP_DATA bytes, PAGE content, DELTA bytes, ZFRAMES
                         // payload (be32 raw_len | zstd frame), JSON, ABORT reason
};

// Walks the frames of one record body.
class FrameReader {
 public:
  // `body` must outlive the reader and every Frame it returns (payloads point into it).
  explicit FrameReader(ByteView body) : body_(body) {}

  // true: *f is the next frame; false: the body is exhausted; error: the frame at
  // offset() is malformed ("frame at offset O: ..."); calling again repeats the error.
  Result<bool> Next(Frame* f);
  // Offset in the body of the next frame to read.
  size_t offset() const { return pos_; }

 private:
  Status Error(const std::string& message) const;

  ByteView body_;
  size_t pos_ = 0;
};

class RecordOpener;

// Hands every frame of every complete, verified record buffered in `opener` to `fn`,
// in order. Stops at the first error (of the record layer, of a frame's structure, or
// returned by `fn`); the error text is prefixed with `peer` ("from receiver: ...").
Status ForEachFrame(RecordOpener* opener, const char* peer,
                    const std::function<Status(const Frame&)>& fn);
// The same for the frames of one verified body.
Status ForEachFrameIn(ByteView body, const char* peer,
                      const std::function<Status(const Frame&)>& fn);

}  // namespace gangmig::wire
