// StreamParser: the pure, incremental parser of QEMU's main migration stream (the
// source->destination direction of the main channel). It finds the 4 KiB payloads of RAM
// PAGE records so that the sender can replace them by content references, and hands every
// other byte on untouched. Bytes in, sink calls out: no I/O, no threads, never fails.
//
// What it understands (stream_format.h has the constants): the file header, CONFIGURATION
// with its subsections, the commands of a precopy migration (OPEN_RETURN_PATH, PING,
// SWITCHOVER_START), and the RAM section START/PART/END bodies with ZERO, PAGE, EOS,
// CONTINUE and MULTIFD_FLUSH records. After the RAM END section the rest of the stream is
// device state, forwarded verbatim (kTail). Anything else (postcopy, XBZRLE, compression,
// block migration, early device sections, corruption) turns the parser into a verbatim
// pass-through for the rest of the stream, with the reason recorded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/bytes.h"

namespace gangmig::qemu_stream {

inline constexpr size_t kPageSize = 4096;

// Where a page lives in the VM: the RAM block (numbered 0, 1, ... in the order the
// stream first names each block) and the page's index in it. The same location in a
// later pre-copy round is the same page of guest memory, re-sent.
struct PageLocation {
  static constexpr uint32_t kUnlocated = UINT32_MAX;  // block: not tracked
  uint32_t block = 0;
  uint64_t page = 0;  // offset in the block / kPageSize
};

// Receives the stream back from the parser, in order. Concatenating the bytes of all
// calls gives back exactly the bytes fed to the parser.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // A run of stream bytes to forward verbatim. May be called with any length >= 1.
  virtual void OnLiteral(ByteView bytes) = 0;
  // The 4096-byte payload of one RAM PAGE record (the record header before it was
  // already given to OnLiteral) and where that page lives. The span is only valid
  // during the call.
  virtual void OnPage(ByteView page, const PageLocation& where) = 0;
};

enum class ParseMode {
  kParsing,      // following the stream record by record
  kTail,         // RAM is finished (or EOF seen): the rest is forwarded verbatim
  kPassThrough,  // gave up on something it does not handle: the rest is verbatim
};

struct ParserStats {
  uint64_t bytes_in = 0;           // total bytes fed
  uint64_t pages = 0;              // PAGE records whose payload went to OnPage
  uint64_t zero_pages = 0;         // ZERO records
  uint64_t ram_sections = 0;       // RAM START/PART/END sections parsed
  uint64_t passthrough_bytes = 0;  // bytes forwarded after a fallback to pass-through
  bool multifd_flush_seen = false;
  bool return_path = false;      // OPEN_RETURN_PATH command seen
  bool ram_end_started = false;  // RAM END section begun: the source VM is stopped and
                                 // this is its last round
};

class StreamParser {
 public:
  explicit StreamParser(StreamSink* sink);  // sink must outlive the parser
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // Consumes all of `data`. Every input byte is eventually given to the sink exactly once,
  // in order, either inside OnLiteral or as an OnPage payload, so that concatenating what
  // the sink receives gives back the input byte for byte. Never fails, never aborts:
  // anything it does not understand switches the parser to kPassThrough for the rest of
  // the stream (every further byte goes to OnLiteral) and records the reason.
  // Only a PAGE payload that straddles two calls is held back (copied into a 4 KiB
  // buffer); everything else reaches the sink before Feed returns.
  void Feed(ByteView data);
  // End of stream: flushes any held-back bytes to OnLiteral. If the stream ended in the
  // middle of a record while kParsing, that is recorded as a fallback reason too
  // ("stream ended inside ...").
  // REQUIRES: called once, after the last Feed.
  void Finish();

  ParseMode mode() const { return mode_; }
  // What made the parser give up, with the stream offset; empty unless kPassThrough.
  const std::string& fallback_reason() const { return fallback_reason_; }
  const ParserStats& stats() const { return stats_; }
  // Bytes fed but not yet given to the sink (a PAGE payload split across Feed calls).
  size_t held_back() const { return page_have_; }

 private:
  // What the next bytes of the stream are; each state reads one fixed-size unit.
  enum class State {
    kFileHeader,      // be32 magic, be32 version
    kTopType,         // u8 record type (first record may be CONFIGURATION)
    kConfigNameLen,   // be32 machine-name length
    kConfigName,      // machine name (skipped)
    kConfigPeek,      // u8: 0x05 starts a subsection, anything else a top-level record
    kSubsectionName,  // counted string
    kSubsectionVersion,
    kPageBits,         // be32 target page bits
    kCapCount,         // be32 capability count
    kCapName,          // counted string
    kUuid,             // 16 bytes
    kSectionHeader,    // START/FULL: be32 id
    kSectionIdstr,     // counted string
    kSectionInstance,  // be32 instance, be32 version
    kSectionId,        // PART/END: be32 id
    kCommandHeader,    // be16 cmd, be16 len
    kCommandPing,      // be32 value
    kRamWord,          // be64 offset|flags
    kRamBlockName,     // counted string before a ZERO/PAGE payload
    kZeroFill,         // u8
    kPagePayload,      // kPageSize bytes, to OnPage
    kBlockName,        // MEM_SIZE block list: counted string
    kBlockLength,      // be64 used_length [+ be64 mr_addr with x-ignore-shared]
    kFooter,           // 0x7e be32 id
  };

  // Runs one state; returns false when the input chunk ran out before its unit did.
  bool Step();
  bool StepConfig();
  bool StepSection();
  bool StepRam();
  bool OnTopType(uint8_t type);
  bool OnSectionStart(uint32_t version);
  bool OnSectionPart(uint32_t id);
  bool OnCommand(uint16_t cmd, uint16_t len);
  bool OnRamWord(uint64_t word);
  bool OnBlockLength(uint64_t at, uint64_t length);
  uint32_t BlockId(std::string_view name);
  static constexpr size_t kMaxBlocks = 1024;
  static constexpr uint32_t kUnlocated = PageLocation::kUnlocated;
  bool OnSubsectionName(std::string_view name);
  bool OnFooter(uint64_t at, const uint8_t* p);
  bool ConsumePage();
  bool SkipBytes();
  bool AtRecordBoundary() const;
  // Stream offset where the unit being taken starts (a counted string's starts at its
  // length byte).
  uint64_t UnitStart() const { return offset_ - scratch_len_ - (counted_have_len_ ? 1 : 0); }

  // Returns the next `n` bytes (n <= sizeof(scratch_)) of the current unit, from the input
  // if it holds them whole, else gathered in scratch_; nullptr when the chunk ran out
  // (the partial unit stays in scratch_ for the next Feed).
  const uint8_t* Take(size_t n);
  // Reads a counted string: the length byte, then the bytes. nullptr while incomplete.
  const uint8_t* TakeCounted(size_t* len);
  void Go(State next) { state_ = next; }
  bool FallBack(uint64_t offset, const std::string& what);
  bool EnterTail();
  void FlushLiteral(size_t end);
  const char* StateName() const;

  StreamSink* const sink_;
  ParseMode mode_ = ParseMode::kParsing;
  State state_ = State::kFileHeader;
  std::string fallback_reason_;
  ParserStats stats_;

  // Current input chunk (valid only during Feed).
  ByteView in_;
  size_t pos_ = 0;        // next unread byte of in_
  size_t lit_start_ = 0;  // first byte of in_ not yet given to the sink
  uint64_t offset_ = 0;   // stream offset of in_[pos_]

  // A unit that straddles Feed calls.
  uint8_t scratch_[256];
  size_t scratch_len_ = 0;
  size_t counted_len_ = 0;         // TakeCounted: the length byte, once read
  bool counted_have_len_ = false;  // TakeCounted: length read, bytes pending
  // A PAGE payload that straddles Feed calls.
  uint8_t page_buf_[kPageSize];
  size_t page_have_ = 0;
  uint64_t skip_left_ = 0;  // kConfigName

  // Stream state.
  uint64_t record_offset_ = 0;  // start of the record being parsed, for messages
  bool first_record_ = true;    // CONFIGURATION is only allowed directly after the header
  bool ignore_shared_ = false;  // x-ignore-shared: block list entries carry mr_addr
  uint32_t caps_left_ = 0;
  State subsection_body_ = State::kConfigPeek;  // what follows the subsection version
  uint8_t section_type_ = 0;
  uint32_t section_id_ = 0;
  std::string section_idstr_;                           // START/FULL header being parsed
  std::unordered_map<uint32_t, std::string> sections_;  // section_id -> idstr
  bool have_ram_id_ = false;
  uint32_t ram_id_ = 0;
  bool ram_finished_ = false;        // RAM END section fully parsed
  bool have_block_ = false;          // a block idstr was seen, so CONTINUE is meaningful
  bool mem_size_allowed_ = false;    // inside a RAM START body, before its first record
  bool ram_record_is_page_ = false;  // the record being parsed is PAGE (else ZERO)
  uint64_t blocks_left_ = 0;         // MEM_SIZE: bytes of RAM not yet covered by the list
  std::string block_name_;           // block list entry being parsed, for messages
  std::unordered_map<std::string, uint32_t> block_ids_;  // RAM block idstr -> number
  PageLocation where_;                                   // of the ZERO/PAGE record being parsed
};

}  // namespace gangmig::qemu_stream
