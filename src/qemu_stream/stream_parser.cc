// The main-stream parser.
//
// The job is narrow: find the 4 KiB payloads of RAM PAGE records in a byte stream that
// arrives in arbitrary chunks, and give back every byte in order. A PAGE payload sits at
// an arbitrary offset, and any record header may be split between two Feed calls, so the
// parser is a state machine over *units*: each state names the next fixed-size piece of
// the stream (the 8-byte file header, a 1-byte record type, a be64 RAM record word, a
// counted string, a 5-byte footer, ...). Take(n) returns a pointer to the next n bytes,
// straight into the caller's chunk when the unit is whole there (the common case), else
// after gathering it in a small scratch buffer across calls. Step() is one flat switch
// over the states: take the unit, decode it, pick the next state.
//
// Output never waits for parsing. Every byte except a PAGE payload is literal, whatever
// the record turns out to be, so a header is part of the literal run even while it is
// still being gathered. Feed therefore keeps one "literal since" mark into its chunk and
// emits [mark, page) before each in-chunk page (then the page as a span into the input, no
// copy) and [mark, end) when the chunk is done. The only bytes held across calls are those
// of a PAGE payload split between chunks, assembled in a 4 KiB buffer; Finish() releases
// them as a literal if the stream stops there.
//
// What is parsed follows the precopy layout: header, CONFIGURATION and its subsections,
// then commands and sections. The RAM section ("ram") START body holds the MEM_SIZE block
// list (extra be64 per block with x-ignore-shared), every RAM body is records up to EOS,
// and each section ends with 0x7e be32(id). The RAM END section is the last RAM data of a
// precopy migration: whatever follows (FULL device sections, EOF, the JSON description)
// goes out verbatim in kTail. Every other structure, and every inconsistency, switches to
// kPassThrough with a reason of the form "offset 0x...: what" -- safe because the bytes
// are forwarded verbatim either way; only the dedup of that stream is lost.
#include "qemu_stream/stream_parser.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "qemu_stream/stream_format.h"

namespace gangmig::qemu_stream {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  return buf;
}

// An idstr or name from the stream, safe to put in a message.
std::string Quoted(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out.push_back(char(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out + "'";
}

std::string_view AsView(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

// START, PART, END or FULL (the only types this is called with).
const char* SectionKind(uint8_t type) {
  static constexpr const char* kNames[] = {"EOF", "START", "PART", "END", "FULL"};
  return type < std::size(kNames) ? kNames[type] : "?";
}

// The command's name, or nullptr for a number QEMU does not define.
const char* CommandName(uint16_t cmd) {
  static constexpr const char* kNames[] = {
      nullptr,        "OPEN_RETURN_PATH",     "PING",     "POSTCOPY_ADVISE", "POSTCOPY_LISTEN",
      "POSTCOPY_RUN", "POSTCOPY_RAM_DISCARD", "PACKAGED", "ENABLE_COLO",     "POSTCOPY_RESUME",
      "RECV_BITMAP",  "SWITCHOVER_START"};
  static_assert(std::size(kNames) == kCmdSwitchoverStart + 1);
  return cmd < std::size(kNames) ? kNames[cmd] : nullptr;
}

}  // namespace

StreamParser::StreamParser(StreamSink* sink) : sink_(sink) {}

void StreamParser::Feed(ByteView data) {
  stats_.bytes_in += data.size();
  in_ = data;
  pos_ = 0;
  lit_start_ = 0;
  while (mode_ == ParseMode::kParsing && Step()) {
  }
  if (mode_ != ParseMode::kParsing) {
    size_t rest = in_.size() - pos_;
    if (mode_ == ParseMode::kPassThrough) stats_.passthrough_bytes += rest;
    pos_ += rest;
    offset_ += rest;
  }
  FlushLiteral(in_.size());
  in_ = ByteView();
}

void StreamParser::Finish() {
  if (mode_ == ParseMode::kParsing && !AtRecordBoundary()) {
    FallBack(offset_, std::string("stream ended inside ") + StateName());
  }
  if (page_have_ > 0) {
    sink_->OnLiteral(ByteView(page_buf_, page_have_));
    stats_.passthrough_bytes += page_have_;
    page_have_ = 0;
  }
}

bool StreamParser::Step() {
  switch (state_) {
    case State::kFileHeader: {
      const uint8_t* p = Take(kFileHeaderSize);
      if (!p) return false;
      if (LoadBE32(p) != kFileMagic) {
        return FallBack(0, "bad magic " + HexString(ByteView(p, 4)) + " (not a QEMU main stream)");
      }
      if (LoadBE32(p + 4) != kFileVersion) {
        return FallBack(4, "unsupported stream version " + std::to_string(LoadBE32(p + 4)));
      }
      Go(State::kTopType);
      return true;
    }
    case State::kTopType: {
      record_offset_ = offset_;
      const uint8_t* p = Take(1);
      return p && OnTopType(*p);
    }
    case State::kConfigNameLen:
    case State::kConfigName:
    case State::kConfigPeek:
    case State::kSubsectionName:
    case State::kSubsectionVersion:
    case State::kPageBits:
    case State::kCapCount:
    case State::kCapName:
    case State::kUuid:
      return StepConfig();
    case State::kSectionHeader:
    case State::kSectionIdstr:
    case State::kSectionInstance:
    case State::kSectionId:
    case State::kFooter:
      return StepSection();
    case State::kCommandHeader: {
      const uint8_t* p = Take(4);
      return p && OnCommand(LoadBE16(p), LoadBE16(p + 2));
    }
    case State::kCommandPing:
      if (!Take(kPingPayloadSize)) return false;
      Go(State::kTopType);
      return true;
    case State::kRamWord:
    case State::kRamBlockName:
    case State::kZeroFill:
    case State::kPagePayload:
    case State::kBlockName:
    case State::kBlockLength:
      return StepRam();
  }
  return FallBack(offset_, "internal error: bad parser state");
}

bool StreamParser::StepConfig() {
  const uint8_t* p = nullptr;
  size_t len = 0;
  switch (state_) {
    case State::kConfigNameLen:
      if (!(p = Take(4))) return false;
      skip_left_ = LoadBE32(p);
      Go(State::kConfigName);
      return true;
    case State::kConfigName:
      return SkipBytes();
    case State::kConfigPeek:
      record_offset_ = offset_;
      if (!(p = Take(1))) return false;
      if (*p != kRecSubsection) return OnTopType(*p);
      Go(State::kSubsectionName);
      return true;
    case State::kSubsectionName:
      if (!(p = TakeCounted(&len))) return false;
      return OnSubsectionName(AsView(p, len));
    case State::kSubsectionVersion:
      if (!Take(4)) return false;
      Go(subsection_body_);
      return true;
    case State::kPageBits: {
      uint64_t at = UnitStart();
      if (!(p = Take(4))) return false;
      uint32_t bits = LoadBE32(p);
      if (bits != 12) {
        std::string size =
            bits < 64 ? std::to_string(uint64_t(1) << bits) : "2^" + std::to_string(bits);
        return FallBack(at, "target page size " + size + " not supported");
      }
      Go(State::kConfigPeek);
      return true;
    }
    case State::kCapCount:
      if (!(p = Take(4))) return false;
      caps_left_ = LoadBE32(p);
      Go(caps_left_ > 0 ? State::kCapName : State::kConfigPeek);
      return true;
    case State::kCapName: {
      uint64_t at = UnitStart();
      if (!(p = TakeCounted(&len))) return false;
      if (AsView(p, len) != kCapXIgnoreShared) {
        return FallBack(at, "capability " + Quoted(AsView(p, len)) + " not supported");
      }
      ignore_shared_ = true;
      Go(--caps_left_ > 0 ? State::kCapName : State::kConfigPeek);
      return true;
    }
    case State::kUuid:
      if (!Take(kConfigUuidSize)) return false;
      Go(State::kConfigPeek);
      return true;
    default:
      return FallBack(offset_, "internal error: bad configuration state");
  }
}

bool StreamParser::OnSubsectionName(std::string_view name) {
  if (name == kConfigTargetPageBits) {
    subsection_body_ = State::kPageBits;
  } else if (name == kConfigCapabilities) {
    subsection_body_ = State::kCapCount;
  } else if (name == kConfigUuid) {
    subsection_body_ = State::kUuid;
  } else if (name.starts_with(kConfigSubsectionPrefix)) {
    return FallBack(record_offset_, "unknown configuration subsection " + Quoted(name));
  } else {
    return FallBack(record_offset_, "subsection " + Quoted(name) + " at top level");
  }
  Go(State::kSubsectionVersion);
  return true;
}

bool StreamParser::OnTopType(uint8_t type) {
  bool first = first_record_;
  first_record_ = false;
  switch (type) {
    case kRecEof:
      return EnterTail();
    case kRecSectionStart:
    case kRecSectionFull:
      if (ram_finished_) return EnterTail();
      section_type_ = type;
      Go(State::kSectionHeader);
      return true;
    case kRecSectionPart:
    case kRecSectionEnd:
      section_type_ = type;
      Go(State::kSectionId);
      return true;
    case kRecCommand:
      Go(State::kCommandHeader);
      return true;
    case kRecConfiguration:
      if (!first) return FallBack(record_offset_, "CONFIGURATION after the first record");
      Go(State::kConfigNameLen);
      return true;
    case kRecSubsection:
      return FallBack(record_offset_, "SUBSECTION at top level");
    case kRecVmDescription:
      return FallBack(record_offset_, "VMDESCRIPTION before EOF");
    case kRecSectionFooter:
      return FallBack(record_offset_, "section footer outside a section");
  }
  return FallBack(record_offset_, "unknown record type " + Hex(type));
}

bool StreamParser::StepSection() {
  const uint8_t* p = nullptr;
  size_t len = 0;
  switch (state_) {
    case State::kSectionHeader:
      if (!(p = Take(4))) return false;
      section_id_ = LoadBE32(p);
      Go(State::kSectionIdstr);
      return true;
    case State::kSectionIdstr:
      if (!(p = TakeCounted(&len))) return false;
      section_idstr_.assign(AsView(p, len));
      Go(State::kSectionInstance);
      return true;
    case State::kSectionInstance:
      if (!(p = Take(8))) return false;
      return OnSectionStart(LoadBE32(p + 4));
    case State::kSectionId:
      if (!(p = Take(4))) return false;
      return OnSectionPart(LoadBE32(p));
    case State::kFooter: {
      uint64_t at = UnitStart();
      if (!(p = Take(kSectionFooterSize))) return false;
      return OnFooter(at, p);
    }
    default:
      return FallBack(offset_, "internal error: bad section state");
  }
}

bool StreamParser::OnSectionStart(uint32_t version) {
  sections_[section_id_] = section_idstr_;
  const char* kind = SectionKind(section_type_);
  if (section_idstr_ != kRamIdstr) {
    return FallBack(record_offset_,
                    "non-RAM section " + Quoted(section_idstr_) + " (" + kind + ") before RAM END");
  }
  if (section_type_ != kRecSectionStart) {
    return FallBack(record_offset_, "RAM section sent as FULL");
  }
  if (version != kRamSectionVersion) {
    return FallBack(record_offset_,
                    "RAM section version " + std::to_string(version) + " not supported");
  }
  have_ram_id_ = true;
  ram_id_ = section_id_;
  mem_size_allowed_ = true;
  Go(State::kRamWord);
  return true;
}

bool StreamParser::OnSectionPart(uint32_t id) {
  section_id_ = id;
  if (have_ram_id_ && id == ram_id_) {
    if (section_type_ == kRecSectionEnd) stats_.ram_end_started = true;
    mem_size_allowed_ = false;
    Go(State::kRamWord);
    return true;
  }
  const char* kind = SectionKind(section_type_);
  auto it = sections_.find(id);
  if (it == sections_.end()) {
    return FallBack(record_offset_,
                    std::string(kind) + " for unknown section id " + std::to_string(id));
  }
  return FallBack(record_offset_, "non-RAM section " + Quoted(it->second) + " (" + kind + ") " +
                                      (ram_finished_ ? "after" : "before") + " RAM END");
}

bool StreamParser::OnFooter(uint64_t at, const uint8_t* p) {
  if (p[0] != kRecSectionFooter || LoadBE32(p + 1) != section_id_) {
    return FallBack(at, "missing footer of section " + std::to_string(section_id_) + " (found " +
                            HexString(ByteView(p, kSectionFooterSize)) + ")");
  }
  stats_.ram_sections++;
  if (section_type_ == kRecSectionEnd) ram_finished_ = true;
  Go(State::kTopType);
  return true;
}

bool StreamParser::OnCommand(uint16_t cmd, uint16_t len) {
  const char* name = CommandName(cmd);
  if (!name) return FallBack(record_offset_, "unknown command " + std::to_string(cmd));
  size_t want = 0;
  State next = State::kTopType;
  switch (cmd) {
    case kCmdOpenReturnPath:
      stats_.return_path = true;
      break;
    case kCmdPing:
      want = kPingPayloadSize;
      next = State::kCommandPing;
      break;
    case kCmdSwitchoverStart:
      break;
    case kCmdPostcopyAdvise:
      return FallBack(record_offset_, "postcopy (POSTCOPY_ADVISE command)");
    default:
      return FallBack(record_offset_, std::string("command ") + name + " (" + std::to_string(cmd) +
                                          ") not supported");
  }
  if (len != want) {
    return FallBack(record_offset_, std::string("command ") + name + " with length " +
                                        std::to_string(len) + " (expected " + std::to_string(want) +
                                        ")");
  }
  Go(next);
  return true;
}

bool StreamParser::StepRam() {
  const uint8_t* p = nullptr;
  size_t len = 0;
  switch (state_) {
    case State::kRamWord:
      record_offset_ = UnitStart();
      if (!(p = Take(8))) return false;
      return OnRamWord(LoadBE64(p));
    case State::kRamBlockName:
      if (!(p = TakeCounted(&len))) return false;
      have_block_ = true;
      where_.block = BlockId(AsView(p, len));
      Go(ram_record_is_page_ ? State::kPagePayload : State::kZeroFill);
      return true;
    case State::kZeroFill:
      if (!Take(1)) return false;
      stats_.zero_pages++;
      Go(State::kRamWord);
      return true;
    case State::kPagePayload:
      return ConsumePage();
    case State::kBlockName:
      if (!(p = TakeCounted(&len))) return false;
      block_name_.assign(AsView(p, len));
      Go(State::kBlockLength);
      return true;
    case State::kBlockLength: {
      uint64_t at = UnitStart();
      // with x-ignore-shared the used_length is followed by be64 mr_addr
      if (!(p = Take(ignore_shared_ ? 16 : 8))) return false;
      return OnBlockLength(at, LoadBE64(p));
    }
    default:
      return FallBack(offset_, "internal error: bad RAM state");
  }
}

// The long one: what a RAM record word means. Mirrors the loader's switch over
// flags & ~CONTINUE.
bool StreamParser::OnRamWord(uint64_t word) {
  uint64_t flags = word & (kPageSize - 1);
  if (flags & ~kRamFlagsKnown) {
    return FallBack(record_offset_, "unknown RAM flags " + Hex(flags & ~kRamFlagsKnown));
  }
  bool mem_size_allowed = mem_size_allowed_;
  mem_size_allowed_ = false;
  uint64_t base = flags & ~kRamFlagContinue;
  switch (base) {
    case kRamFlagPage:
    case kRamFlagZero:
      ram_record_is_page_ = base == kRamFlagPage;
      where_.page = word / kPageSize;
      if (!(flags & kRamFlagContinue)) {
        Go(State::kRamBlockName);
      } else if (!have_block_) {
        return FallBack(record_offset_, "CONTINUE record without a previous block");
      } else {
        Go(ram_record_is_page_ ? State::kPagePayload : State::kZeroFill);
      }
      return true;
    case kRamFlagEos:
      Go(State::kFooter);
      return true;
    case kRamFlagMultifdFlush:
      stats_.multifd_flush_seen = true;
      return true;
    case kRamFlagMemSize:
      if (!mem_size_allowed) return FallBack(record_offset_, "MEM_SIZE outside RAM START");
      blocks_left_ = word & ~uint64_t(kPageSize - 1);
      Go(blocks_left_ > 0 ? State::kBlockName : State::kRamWord);
      return true;
    case kRamFlagXbzrle:
      return FallBack(record_offset_, "XBZRLE page (xbzrle capability)");
    case kRamFlagCompressPage:
      return FallBack(record_offset_, "COMPRESS_PAGE record (compress capability)");
    case kRamFlagHook:
      return FallBack(record_offset_, "RAM HOOK record (RDMA)");
    case kRamFlagFull:
      return FallBack(record_offset_, "obsolete RAM FULL record");
  }
  return FallBack(record_offset_, "unexpected RAM flags " + Hex(flags));
}

// Numbers block names in order of appearance. A VM has a handful of RAM blocks; past
// kMaxBlocks distinct names (only a corrupt or hostile stream) pages stay unlocated.
uint32_t StreamParser::BlockId(std::string_view name) {
  auto it = block_ids_.find(std::string(name));
  if (it != block_ids_.end()) return it->second;
  if (block_ids_.size() >= kMaxBlocks) return kUnlocated;
  return block_ids_.emplace(std::string(name), uint32_t(block_ids_.size())).first->second;
}

bool StreamParser::OnBlockLength(uint64_t at, uint64_t length) {
  if (length > blocks_left_) {
    return FallBack(at, "RAM block " + Quoted(block_name_) + " length " + Hex(length) +
                            " exceeds the rest of MEM_SIZE " + Hex(blocks_left_));
  }
  blocks_left_ -= length;
  Go(blocks_left_ > 0 ? State::kBlockName : State::kRamWord);
  return true;
}

bool StreamParser::ConsumePage() {
  size_t avail = in_.size() - pos_;
  FlushLiteral(pos_);
  if (page_have_ == 0 && avail >= kPageSize) {
    sink_->OnPage(in_.subspan(pos_, kPageSize), where_);
    pos_ += kPageSize;
    offset_ += kPageSize;
  } else {
    size_t n = std::min(kPageSize - page_have_, avail);
    if (n > 0) std::memcpy(page_buf_ + page_have_, in_.data() + pos_, n);
    page_have_ += n;
    pos_ += n;
    offset_ += n;
    lit_start_ = pos_;
    if (page_have_ < kPageSize) return false;
    page_have_ = 0;
    sink_->OnPage(ByteView(page_buf_, kPageSize), where_);
  }
  lit_start_ = pos_;
  stats_.pages++;
  Go(State::kRamWord);
  return true;
}

bool StreamParser::SkipBytes() {
  uint64_t n = std::min<uint64_t>(skip_left_, in_.size() - pos_);
  pos_ += n;
  offset_ += n;
  skip_left_ -= n;
  if (skip_left_ > 0) return false;
  Go(State::kConfigPeek);
  return true;
}

const uint8_t* StreamParser::Take(size_t n) {
  if (n == 0) return scratch_;
  size_t avail = in_.size() - pos_;
  if (scratch_len_ == 0 && avail >= n) {
    const uint8_t* p = in_.data() + pos_;
    pos_ += n;
    offset_ += n;
    return p;
  }
  size_t want = std::min(n - scratch_len_, avail);
  if (want > 0) std::memcpy(scratch_ + scratch_len_, in_.data() + pos_, want);
  scratch_len_ += want;
  pos_ += want;
  offset_ += want;
  if (scratch_len_ < n) return nullptr;
  scratch_len_ = 0;
  return scratch_;
}

const uint8_t* StreamParser::TakeCounted(size_t* len) {
  if (!counted_have_len_) {
    const uint8_t* p = Take(1);
    if (!p) return nullptr;
    counted_len_ = *p;
    counted_have_len_ = true;
  }
  const uint8_t* p = Take(counted_len_);
  if (!p) return nullptr;
  counted_have_len_ = false;
  *len = counted_len_;
  return p;
}

bool StreamParser::FallBack(uint64_t offset, const std::string& what) {
  mode_ = ParseMode::kPassThrough;
  fallback_reason_ = "offset " + Hex(offset) + ": " + what;
  return false;
}

bool StreamParser::EnterTail() {
  mode_ = ParseMode::kTail;
  return false;
}

void StreamParser::FlushLiteral(size_t end) {
  if (end > lit_start_) sink_->OnLiteral(in_.subspan(lit_start_, end - lit_start_));
  lit_start_ = end;
}

// Between two top-level records (or before any byte): ending there is not "inside" one.
bool StreamParser::AtRecordBoundary() const {
  if (scratch_len_ > 0 || counted_have_len_) return false;
  return state_ == State::kTopType || state_ == State::kConfigPeek ||
         (state_ == State::kFileHeader && offset_ == 0);
}

const char* StreamParser::StateName() const {
  switch (state_) {
    case State::kFileHeader:
      return "the file header";
    case State::kTopType:
      return "a record type";
    case State::kConfigNameLen:
    case State::kConfigName:
    case State::kConfigPeek:
    case State::kSubsectionName:
    case State::kSubsectionVersion:
    case State::kPageBits:
    case State::kCapCount:
    case State::kCapName:
    case State::kUuid:
      return "CONFIGURATION";
    case State::kSectionHeader:
    case State::kSectionIdstr:
    case State::kSectionInstance:
    case State::kSectionId:
      return "a section header";
    case State::kCommandHeader:
    case State::kCommandPing:
      return "a COMMAND";
    case State::kRamWord:
      return "a RAM section";
    case State::kRamBlockName:
    case State::kZeroFill:
      return "a RAM record";
    case State::kPagePayload:
      return "a PAGE payload";
    case State::kBlockName:
    case State::kBlockLength:
      return "the RAM block list";
    case State::kFooter:
      return "a section footer";
  }
  return "?";
}

}  // namespace gangmig::qemu_stream
