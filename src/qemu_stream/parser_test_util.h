// Test helpers for StreamParser (header-only, used by the *_test.cc files of this layer
// and the core's pipeline tests): a builder of synthetic streams, a sink that records
// what it receives, and drivers that feed a stream in chunks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "qemu_stream/stream_format.h"
#include "qemu_stream/stream_parser.h"

namespace gangmig::qemu_stream {

// Builds synthetic main streams record by record.
class StreamBuilder {
 public:
  StreamBuilder& U8(uint8_t v) { return PutU8(&b_, v), *this; }
  StreamBuilder& BE16(uint16_t v) { return PutBE16(&b_, v), *this; }
  StreamBuilder& BE32(uint32_t v) { return PutBE32(&b_, v), *this; }
  StreamBuilder& BE64(uint64_t v) { return PutBE64(&b_, v), *this; }
  StreamBuilder& Raw(ByteView v) { return PutBytes(&b_, v), *this; }
  StreamBuilder& Raw(std::string_view s) { return Raw(AsBytes(s)); }
  StreamBuilder& Counted(std::string_view s) { return U8(uint8_t(s.size())).Raw(s); }

  StreamBuilder& Header(uint32_t magic = kFileMagic, uint32_t version = kFileVersion) {
    return BE32(magic).BE32(version);
  }
  StreamBuilder& Config(std::string_view machine) {
    return U8(kRecConfiguration).BE32(uint32_t(machine.size())).Raw(machine);
  }
  StreamBuilder& Subsection(std::string_view name) {
    return U8(kRecSubsection).Counted(name).BE32(1);
  }
  StreamBuilder& Command(uint16_t cmd, ByteView payload = {}) {
    return U8(kRecCommand).BE16(cmd).BE16(uint16_t(payload.size())).Raw(payload);
  }
  StreamBuilder& Ping(uint32_t v) {
    Bytes p;
    PutBE32(&p, v);
    return Command(kCmdPing, p);
  }
  StreamBuilder& Start(uint32_t id, std::string_view idstr, uint32_t version = 4,
                       uint8_t type = kRecSectionStart) {
    return U8(type).BE32(id).Counted(idstr).BE32(0).BE32(version);
  }
  StreamBuilder& Full(uint32_t id, std::string_view idstr, uint32_t version = 1) {
    return Start(id, idstr, version, kRecSectionFull);
  }
  StreamBuilder& Part(uint32_t id) { return U8(kRecSectionPart).BE32(id); }
  StreamBuilder& End(uint32_t id) { return U8(kRecSectionEnd).BE32(id); }
  StreamBuilder& Footer(uint32_t id) { return U8(kRecSectionFooter).BE32(id); }
  StreamBuilder& Eof() { return U8(kRecEof); }

  StreamBuilder& MemSize(uint64_t total) { return BE64(total | kRamFlagMemSize); }
  StreamBuilder& Block(std::string_view name, uint64_t len) { return Counted(name).BE64(len); }
  StreamBuilder& Block(std::string_view name, uint64_t len, uint64_t mr_addr) {
    return Block(name, len).BE64(mr_addr);
  }
  // An empty `block` means CONTINUE (same block as the previous record).
  StreamBuilder& Record(uint64_t offset, uint64_t flags, std::string_view block) {
    if (block.empty()) return BE64(offset | flags | kRamFlagContinue);
    return BE64(offset | flags).Counted(block);
  }
  StreamBuilder& Zero(uint64_t offset, std::string_view block = "") {
    return Record(offset, kRamFlagZero, block).U8(0);
  }
  StreamBuilder& Page(uint64_t offset, std::string_view block, const Bytes& content) {
    return Record(offset, kRamFlagPage, block).Raw(content);
  }
  StreamBuilder& Eos() { return BE64(kRamFlagEos); }
  // A minimal RAM START section (id 2, one 8 KiB block "pc.ram").
  StreamBuilder& RamStart() {
    return Start(2, "ram").MemSize(0x2000).Block("pc.ram", 0x2000).Eos().Footer(2);
  }
  StreamBuilder& Prelude() { return Header().Config("pc-q35-7.2"); }

  // Remembers the current end as the offset a test expects a message to name.
  StreamBuilder& Mark() { return mark_ = b_.size(), *this; }

  size_t size() const { return b_.size(); }
  size_t mark() const { return mark_; }
  const Bytes& bytes() const { return b_; }

 private:
  Bytes b_;
  size_t mark_ = 0;
};

// Records every sink call; `out` is the concatenation the parser promises equals its input.
class RecordingSink : public StreamSink {
 public:
  void OnLiteral(ByteView bytes) override {
    if (bytes.empty()) bad_calls++;
    literal_calls++;
    PutBytes(&out, bytes);
  }
  void OnPage(ByteView page, const PageLocation& where) override {
    if (page.size() != kPageSize) bad_calls++;
    locations.push_back(where);
    page_ptrs.push_back(page.data());
    pages.emplace_back(page.begin(), page.end());
    PutBytes(&out, page);
  }

  Bytes out;
  std::vector<Bytes> pages;
  std::vector<const uint8_t*> page_ptrs;  // where each OnPage span pointed
  std::vector<PageLocation> locations;    // where each page lives in the VM
  size_t literal_calls = 0;
  size_t bad_calls = 0;  // empty literals or pages of the wrong size
};

struct ParseOutcome {
  RecordingSink sink;
  ParseMode mode = ParseMode::kParsing;
  std::string reason;
  ParserStats stats;
};

// Feeds `in` in pieces whose sizes come from `next_size` (called until the input is used
// up; sizes are clamped to what is left), then calls Finish.
template <typename NextSize>
ParseOutcome ParseWith(ByteView in, NextSize next_size) {
  ParseOutcome o;
  StreamParser parser(&o.sink);
  size_t pos = 0;
  while (pos < in.size()) {
    size_t n = std::min(std::max<size_t>(next_size(), 1), in.size() - pos);
    parser.Feed(in.subspan(pos, n));
    pos += n;
  }
  parser.Finish();
  o.mode = parser.mode();
  o.reason = parser.fallback_reason();
  o.stats = parser.stats();
  return o;
}

inline ParseOutcome ParseInChunksOf(ByteView in, size_t chunk) {
  return ParseWith(in, [chunk] { return chunk; });
}

inline ParseOutcome ParseWhole(ByteView in) { return ParseInChunksOf(in, in.size() + 1); }

// Random chunk sizes: mostly small (headers split everywhere), sometimes page-sized or big.
inline ParseOutcome ParseRandomChunks(ByteView in, uint32_t seed, size_t max_chunk = 70000) {
  std::mt19937 rng(seed);
  return ParseWith(in, [&rng, max_chunk] {
    switch (rng() % 4) {
      case 0:
        return size_t(1 + rng() % 16);
      case 1:
        return size_t(1 + rng() % 5000);
      default:
        return size_t(1 + rng() % max_chunk);
    }
  });
}

}  // namespace gangmig::qemu_stream
