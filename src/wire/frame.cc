// Frames: encoding and structural decoding.
//
// Every frame starts with a one-byte type; the type alone fixes which fields follow
// (vm, channel, a 16- or 32-bit length, a page id, a whole page). The decoder is driven
// by one table of those layouts, so the rules are the same for every type and are
// checked in the same order, which the error texts reflect:
//   1. the type is known;
//   2. the fixed header is complete  ("truncated T frame (need N bytes, have M)");
//   3. vm < kMaxVms, channel < kMaxChannels;
//   4. the length is in range       ("T length 0", "T length L out of range (max M)");
//   5. the payload is complete      ("truncated T frame (need N bytes, have M)").
// N counts the whole frame from its type byte: only the header when the length is not
// known yet. Payloads are returned as views into the body: decoding copies nothing.
#include "wire/frame.h"

#include <cassert>
#include <cstdio>
#include <string>

#include "wire/record.h"

namespace gangmig::wire {
namespace {

// What follows vm/channel in a frame.
enum class Tail { kNone, kLen16, kLen32, kPage, kPageId, kPageIdLen16, kKey, kPageIdPage };

struct Layout {
  FrameType type;
  const char* name;
  bool has_vm;
  bool has_channel;
  Tail tail;
  size_t min_len;  // for kLen16/kLen32
  size_t max_len;
  bool from_sender;
  bool from_receiver;
};

constexpr Layout kLayouts[] = {
    {FrameType::kVmOpen, "VM_OPEN", true, false, Tail::kLen16, 1, kMaxJsonLen, true, false},
    {FrameType::kData, "DATA", true, true, Tail::kLen32, 1, kMaxDataLen, true, false},
    {FrameType::kPage, "PAGE", true, true, Tail::kPage, 0, 0, true, false},
    {FrameType::kRef, "REF", true, true, Tail::kPageId, 0, 0, true, false},
    {FrameType::kChannelOpen, "CHANNEL_OPEN", true, true, Tail::kNone, 0, 0, true, false},
    {FrameType::kChannelEof, "CHANNEL_EOF", true, true, Tail::kNone, 0, 0, true, false},
    {FrameType::kZFrames, "ZFRAMES", false, false, Tail::kLen32, kMinZFramesLen,
     kMaxRecordBody - kZFramesHeaderSize, true, false},
    {FrameType::kDelta, "DELTA", true, true, Tail::kPageIdLen16, 1, kMaxDeltaLen, true, false},
    {FrameType::kCref, "CREF", true, true, Tail::kKey, 0, 0, true, false},
    {FrameType::kFill, "FILL", false, false, Tail::kPageIdPage, 0, 0, true, false},
    {FrameType::kRpData, "RP_DATA", true, true, Tail::kLen32, 1, kMaxDataLen, false, true},
    {FrameType::kRpEof, "RP_EOF", true, true, Tail::kNone, 0, 0, false, true},
    {FrameType::kVmEvent, "VM_EVENT", true, false, Tail::kLen16, 1, kMaxJsonLen, false, true},
    {FrameType::kSummary, "SUMMARY", false, false, Tail::kLen32, kSummaryFieldsSize + 1,
     kMaxRecordBody - kSummaryHeaderSize, false, true},
    {FrameType::kNeed, "NEED", false, false, Tail::kPageId, 0, 0, false, true},
    {FrameType::kCacheAck, "CACHE_ACK", false, false, Tail::kPageId, 0, 0, false, true},
    {FrameType::kAbort, "ABORT", false, false, Tail::kLen16, 0, kMaxJsonLen, true, true},
    {FrameType::kGoodbye, "GOODBYE", false, false, Tail::kNone, 0, 0, true, false},
    {FrameType::kPing, "PING", false, false, Tail::kNone, 0, 0, true, true},
};

const Layout* FindLayout(uint8_t type) {
  for (const Layout& l : kLayouts) {
    if (uint8_t(l.type) == type) return &l;
  }
  return nullptr;
}

size_t TailHeaderSize(Tail t) {
  switch (t) {
    case Tail::kLen16:
      return 2;
    case Tail::kLen32:
    case Tail::kPageId:
    case Tail::kPageIdPage:
      return 4;
    case Tail::kPageIdLen16:
      return 6;
    case Tail::kNone:
    case Tail::kPage:
    case Tail::kKey:
      return 0;
  }
  return 0;
}

size_t HeaderSize(const Layout& l) {
  return 1 + (l.has_vm ? 2 : 0) + (l.has_channel ? 1 : 0) + TailHeaderSize(l.tail);
}

void PutType(Bytes* out, FrameType type) { PutU8(out, uint8_t(type)); }

void PutVmChannel(Bytes* out, FrameType type, uint16_t vm, uint8_t channel) {
  assert(vm < kMaxVms && channel < kMaxChannels);
  PutType(out, type);
  PutBE16(out, vm);
  PutU8(out, channel);
}

void PutJsonFrame(Bytes* out, FrameType type, uint16_t vm, std::string_view json) {
  assert(vm < kMaxVms && !json.empty() && json.size() <= kMaxJsonLen);
  PutType(out, type);
  PutBE16(out, vm);
  PutBE16(out, uint16_t(json.size()));
  PutBytes(out, AsBytes(json));
}

void PutDataFrame(Bytes* out, FrameType type, uint16_t vm, uint8_t channel, ByteView data) {
  assert(!data.empty() && data.size() <= kMaxDataLen);
  PutVmChannel(out, type, vm, channel);
  PutBE32(out, uint32_t(data.size()));
  PutBytes(out, data);
}

}  // namespace

// ---- Encoding ------------------------------------------------------------------------

void AppendVmOpen(Bytes* out, uint16_t vm, std::string_view json) {
  PutJsonFrame(out, FrameType::kVmOpen, vm, json);
}

void AppendData(Bytes* out, uint16_t vm, uint8_t channel, ByteView data) {
  PutDataFrame(out, FrameType::kData, vm, channel, data);
}

void AppendPage(Bytes* out, uint16_t vm, uint8_t channel, ByteView page) {
  assert(page.size() == kPageSize);
  PutVmChannel(out, FrameType::kPage, vm, channel);
  PutBytes(out, page);
}

void AppendRef(Bytes* out, uint16_t vm, uint8_t channel, uint32_t page_id) {
  PutVmChannel(out, FrameType::kRef, vm, channel);
  PutBE32(out, page_id);
}

void AppendDelta(Bytes* out, uint16_t vm, uint8_t channel, uint32_t base_id, ByteView delta) {
  assert(!delta.empty() && delta.size() <= kMaxDeltaLen);
  PutVmChannel(out, FrameType::kDelta, vm, channel);
  PutBE32(out, base_id);
  PutBE16(out, uint16_t(delta.size()));
  PutBytes(out, delta);
}

void PutZFramesHeader(uint8_t* at, size_t compressed_len, size_t raw_len) {
  assert(compressed_len >= 1 && raw_len >= 1 && raw_len <= kMaxRecordBody);
  at[0] = uint8_t(FrameType::kZFrames);
  StoreBE32(at + 1, uint32_t(kZFramesRawLenSize + compressed_len));
  StoreBE32(at + kZFramesHeaderSize, uint32_t(raw_len));
}

void AppendChannelOpen(Bytes* out, uint16_t vm, uint8_t channel) {
  PutVmChannel(out, FrameType::kChannelOpen, vm, channel);
}

void AppendChannelEof(Bytes* out, uint16_t vm, uint8_t channel) {
  PutVmChannel(out, FrameType::kChannelEof, vm, channel);
}

void AppendRpData(Bytes* out, uint16_t vm, uint8_t channel, ByteView data) {
  PutDataFrame(out, FrameType::kRpData, vm, channel, data);
}

void AppendRpEof(Bytes* out, uint16_t vm, uint8_t channel) {
  PutVmChannel(out, FrameType::kRpEof, vm, channel);
}

void AppendVmEvent(Bytes* out, uint16_t vm, std::string_view json) {
  PutJsonFrame(out, FrameType::kVmEvent, vm, json);
}

void AppendAbort(Bytes* out, std::string_view reason) {
  reason = reason.substr(0, kMaxJsonLen);
  PutType(out, FrameType::kAbort);
  PutBE16(out, uint16_t(reason.size()));
  PutBytes(out, AsBytes(reason));
}

void AppendCref(Bytes* out, uint16_t vm, uint8_t channel, ByteView key) {
  assert(key.size() == kKeySize);
  PutVmChannel(out, FrameType::kCref, vm, channel);
  PutBytes(out, key);
}

void AppendFill(Bytes* out, uint32_t cref, ByteView page) {
  assert(page.size() == kPageSize);
  PutType(out, FrameType::kFill);
  PutBE32(out, cref);
  PutBytes(out, page);
}

void AppendSummary(Bytes* out, uint8_t k, uint8_t log2_bits, uint32_t offset, ByteView bits) {
  assert(!bits.empty() && bits.size() <= kMaxRecordBody - kSummaryHeaderSize - kSummaryFieldsSize);
  PutType(out, FrameType::kSummary);
  PutBE32(out, uint32_t(kSummaryFieldsSize + bits.size()));
  PutU8(out, k);
  PutU8(out, log2_bits);
  PutBE32(out, offset);
  PutBytes(out, bits);
}

void AppendNeed(Bytes* out, uint32_t cref) {
  PutType(out, FrameType::kNeed);
  PutBE32(out, cref);
}

void AppendCacheAck(Bytes* out, uint32_t crefs) {
  PutType(out, FrameType::kCacheAck);
  PutBE32(out, crefs);
}

void AppendGoodbye(Bytes* out) { PutType(out, FrameType::kGoodbye); }
void AppendPing(Bytes* out) { PutType(out, FrameType::kPing); }

// ---- Decoding ------------------------------------------------------------------------

const char* FrameTypeName(FrameType type) {
  const Layout* l = FindLayout(uint8_t(type));
  return l ? l->name : nullptr;
}

bool MaySend(Peer from, FrameType type) {
  const Layout* l = FindLayout(uint8_t(type));
  if (l == nullptr) return false;
  return from == Peer::kSender ? l->from_sender : l->from_receiver;
}

Status FrameReader::Error(const std::string& message) const {
  return Status::Error("frame at offset " + std::to_string(pos_) + ": " + message);
}

Result<bool> FrameReader::Next(Frame* f) {
  if (pos_ == body_.size()) return false;
  const uint8_t* p = body_.data() + pos_;
  const size_t have = body_.size() - pos_;
  const Layout* l = FindLayout(p[0]);
  if (l == nullptr) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "%02x", p[0]);
    return Error(std::string("unknown frame type 0x") + hex);
  }
  auto truncated = [&](size_t need) {
    return Error(std::string("truncated ") + l->name + " frame (need " + std::to_string(need) +
                 " bytes, have " + std::to_string(have) + ")");
  };
  const size_t header = HeaderSize(*l);
  if (have < header) return truncated(header);

  Frame frame;
  frame.type = l->type;
  size_t q = 1;
  if (l->has_vm) {
    frame.vm = LoadBE16(p + q);
    q += 2;
    if (frame.vm >= kMaxVms) {
      return Error("vm id " + std::to_string(frame.vm) + " out of range (max " +
                   std::to_string(kMaxVms - 1) + ")");
    }
  }
  if (l->has_channel) {
    frame.channel = p[q++];
    if (frame.channel >= kMaxChannels) {
      return Error("channel " + std::to_string(frame.channel) + " out of range (max " +
                   std::to_string(kMaxChannels - 1) + ")");
    }
  }
  size_t payload = 0;
  switch (l->tail) {
    case Tail::kNone:
      break;
    case Tail::kLen16:
      payload = LoadBE16(p + q);
      break;
    case Tail::kLen32:
      payload = LoadBE32(p + q);
      break;
    case Tail::kPage:
      payload = kPageSize;
      break;
    case Tail::kPageId:
      frame.page_id = LoadBE32(p + q);
      break;
    case Tail::kPageIdLen16:
      frame.page_id = LoadBE32(p + q);
      payload = LoadBE16(p + q + 4);
      break;
    case Tail::kKey:
      payload = kKeySize;
      break;
    case Tail::kPageIdPage:
      frame.page_id = LoadBE32(p + q);
      payload = kPageSize;
      break;
  }
  if (l->tail == Tail::kLen16 || l->tail == Tail::kLen32 || l->tail == Tail::kPageIdLen16) {
    if (payload < l->min_len) {
      return Error(std::string(l->name) + " length " + std::to_string(payload));
    }
    if (payload > l->max_len) {
      return Error(std::string(l->name) + " length " + std::to_string(payload) +
                   " out of range (max " + std::to_string(l->max_len) + ")");
    }
  }
  if (have < header + payload) return truncated(header + payload);

  frame.payload = body_.subspan(pos_ + header, payload);
  pos_ += header + payload;
  *f = frame;
  return true;
}

Status ForEachFrame(RecordOpener* opener, const char* peer,
                    const std::function<Status(const Frame&)>& fn) {
  Bytes body;
  for (;;) {
    auto more = opener->Next(&body);
    if (!more.ok()) return more.status().WithContext(peer);
    if (!*more) return Status::Ok();
    GANGMIG_RETURN_IF_ERROR(ForEachFrameIn(body, peer, fn));
  }
}

Status ForEachFrameIn(ByteView body, const char* peer,
                      const std::function<Status(const Frame&)>& fn) {
  FrameReader reader(body);
  Frame f;
  for (;;) {
    auto next = reader.Next(&f);
    if (!next.ok()) return next.status().WithContext(peer);
    if (!*next) return Status::Ok();
    GANGMIG_RETURN_IF_ERROR(fn(f));
  }
}

}  // namespace gangmig::wire
