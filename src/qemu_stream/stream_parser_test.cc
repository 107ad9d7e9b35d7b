#include "qemu_stream/stream_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "qemu_stream/parser_test_util.h"
#include "qemu_stream/stream_format.h"

namespace gangmig::qemu_stream {
namespace {

Bytes PageContent(int seed) {
  Bytes p(kPageSize);
  for (size_t i = 0; i < p.size(); i++) p[i] = uint8_t(seed * 37 + i * 7 + (i >> 8));
  return p;
}

std::string HexOffset(size_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "offset 0x%zx: ", v);
  return buf;
}

// header, CONFIGURATION, RAM START (2 blocks), PART (ZERO, PAGE, PAGE, ZERO, with and
// without CONTINUE), END (PAGE), a FULL device section, EOF and a VMDESC.
Bytes BasicStream() {
  StreamBuilder b;
  b.Prelude()
      .Start(2, "ram")
      .MemSize(0xa000)
      .Block("pc.ram", 0x8000)
      .Block("0000:00:01.0/vga.vram", 0x2000)
      .Eos()
      .Footer(2);
  b.Part(2)
      .Zero(0, "pc.ram")
      .Page(0x1000, "", PageContent(1))
      .Page(0, "0000:00:01.0/vga.vram", PageContent(2))
      .Zero(0x1000)
      .Eos()
      .Footer(2);
  b.End(2).Page(0x1000, "", PageContent(3)).Eos().Footer(2);
  b.Full(3, "timer", 2).Raw("0123456789abcdef01234567").Footer(3);
  b.Eof().U8(kRecVmDescription).BE32(2).Raw("{}");
  return b.bytes();
}

void ExpectBasicOutcome(const ParseOutcome& o, const Bytes& in) {
  EXPECT_EQ(o.mode, ParseMode::kTail);
  EXPECT_EQ(o.reason, "");
  EXPECT_EQ(o.sink.bad_calls, 0u);
  ASSERT_EQ(o.sink.out, in);
  ASSERT_EQ(o.sink.pages.size(), 3u);
  EXPECT_EQ(o.sink.pages[0], PageContent(1));
  EXPECT_EQ(o.sink.pages[1], PageContent(2));
  EXPECT_EQ(o.sink.pages[2], PageContent(3));
  EXPECT_EQ(o.stats.pages, 3u);
  EXPECT_EQ(o.stats.zero_pages, 2u);
  EXPECT_EQ(o.stats.ram_sections, 3u);
  EXPECT_EQ(o.stats.bytes_in, in.size());
  EXPECT_EQ(o.stats.passthrough_bytes, 0u);
  EXPECT_FALSE(o.stats.multifd_flush_seen);
  EXPECT_FALSE(o.stats.return_path);
}

TEST(StreamParserTest, BasicStreamInOneFeed) {
  Bytes in = BasicStream();
  ParseOutcome o = ParseWhole(in);
  ExpectBasicOutcome(o, in);
  // Whole pages are passed as spans into the input, and literals come in one run per gap
  // between pages.
  for (const uint8_t* p : o.sink.page_ptrs) {
    EXPECT_TRUE(p >= in.data() && p + kPageSize <= in.data() + in.size());
  }
  EXPECT_EQ(o.sink.literal_calls, 4u);
}

TEST(StreamParserTest, BasicStreamEveryChunkSize) {
  Bytes in = BasicStream();
  for (size_t chunk = 1; chunk <= in.size(); chunk++) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    ExpectBasicOutcome(ParseInChunksOf(in, chunk), in);
    if (HasFailure()) break;
  }
}

TEST(StreamParserTest, BasicStreamRandomChunkings) {
  Bytes in = BasicStream();
  for (uint32_t seed = 0; seed < 300; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectBasicOutcome(ParseRandomChunks(in, seed, 9000), in);
    if (HasFailure()) break;
  }
}

TEST(StreamParserTest, SplitPageIsHeldBackUntilComplete) {
  Bytes in = BasicStream();
  // Cut 100 bytes into the first page payload.
  size_t cut = 0;
  for (size_t i = 0; i + kPageSize <= in.size(); i++) {
    if (std::equal(in.begin() + i, in.begin() + i + kPageSize, PageContent(1).begin())) {
      cut = i + 100;
      break;
    }
  }
  ASSERT_GT(cut, 0u);
  RecordingSink sink;
  StreamParser parser(&sink);
  parser.Feed(ByteView(in).first(cut));
  EXPECT_EQ(sink.out.size(), cut - 100);  // everything but the partial payload
  EXPECT_TRUE(sink.pages.empty());
  parser.Feed(ByteView(in).subspan(cut));
  parser.Finish();
  EXPECT_EQ(sink.out, in);
  ASSERT_EQ(sink.pages.size(), 3u);
  EXPECT_EQ(sink.pages[0], PageContent(1));
  EXPECT_EQ(parser.mode(), ParseMode::kTail);
}

TEST(StreamParserTest, IgnoreSharedUuidReturnPath) {
  StreamBuilder b;
  b.Header().Config("pc-q35-7.2");
  b.Subsection(kConfigTargetPageBits).BE32(12);
  b.Subsection(kConfigCapabilities).BE32(1).Counted("x-ignore-shared");
  b.Subsection(kConfigUuid).Raw(Bytes(16, 0x12));
  b.Command(kCmdOpenReturnPath).Ping(1);
  b.Start(2, "ram")
      .MemSize(0x3000)
      .Block("pc.ram", 0x2000, 0)
      .Block("pc.bios", 0x1000, 0xfffc0000)
      .Eos()
      .Footer(2);
  b.End(2).Page(0, "pc.bios", PageContent(7)).Zero(0x1000, "pc.ram").Eos().Footer(2);
  b.Full(4, "cpu").Raw("xyz").Footer(4).Eof();
  for (size_t chunk : {size_t(1), size_t(3), b.size()}) {
    ParseOutcome o = ParseInChunksOf(b.bytes(), chunk);
    EXPECT_EQ(o.mode, ParseMode::kTail);
    EXPECT_EQ(o.reason, "");
    EXPECT_EQ(o.sink.out, b.bytes());
    ASSERT_EQ(o.sink.pages.size(), 1u);
    EXPECT_EQ(o.sink.pages[0], PageContent(7));
    EXPECT_TRUE(o.stats.return_path);
    EXPECT_EQ(o.stats.zero_pages, 1u);
    EXPECT_EQ(o.stats.ram_sections, 2u);
  }
}

TEST(StreamParserTest, SwitchoverStartAndMultifdFlush) {
  StreamBuilder b;
  b.Header().Config("pc-q35-10.0");
  b.Start(2, "ram").MemSize(0x2000).Block("pc.ram", 0x2000);
  b.BE64(kRamFlagMultifdFlush).Eos().Footer(2);
  b.Part(2).BE64(kRamFlagMultifdFlush).Eos().Footer(2);
  b.Command(kCmdSwitchoverStart);
  b.End(2).Page(0x1000, "pc.ram", PageContent(4)).Eos().Footer(2);
  b.Full(0, "timer", 2).Raw("t").Footer(0).Eof();
  ParseOutcome o = ParseRandomChunks(b.bytes(), 1);
  EXPECT_EQ(o.mode, ParseMode::kTail);
  EXPECT_EQ(o.reason, "");
  EXPECT_EQ(o.sink.out, b.bytes());
  EXPECT_TRUE(o.stats.multifd_flush_seen);
  EXPECT_FALSE(o.stats.return_path);
  EXPECT_EQ(o.stats.pages, 1u);
  EXPECT_EQ(o.stats.ram_sections, 3u);
}

TEST(StreamParserTest, EofWhileParsingIsTail) {
  StreamBuilder b;
  b.Prelude().Command(kCmdOpenReturnPath).Ping(1).Eof().Raw("anything \x01\x02 at all");
  ParseOutcome o = ParseWhole(b.bytes());
  EXPECT_EQ(o.mode, ParseMode::kTail);
  EXPECT_EQ(o.reason, "");
  EXPECT_EQ(o.sink.out, b.bytes());
  EXPECT_TRUE(o.stats.return_path);
  EXPECT_EQ(o.stats.passthrough_bytes, 0u);
}

TEST(StreamParserTest, NonzeroZeroFillIsAccepted) {
  StreamBuilder b;
  b.Prelude().RamStart().Part(2).Record(0, kRamFlagZero, "pc.ram").U8(0x55).Eos().Footer(2);
  b.End(2).Eos().Footer(2).Eof();
  ParseOutcome o = ParseWhole(b.bytes());
  EXPECT_EQ(o.mode, ParseMode::kTail);
  EXPECT_EQ(o.stats.zero_pages, 1u);
  EXPECT_EQ(o.sink.out, b.bytes());
}

// ---- Fallbacks: each with its exact reason, the same under every chunking --------------

struct FallbackCase {
  std::string name;
  Bytes stream;
  std::string reason;
};

// The stream in `b` has its defect at b.mark(); 64 bytes of junk are appended so that
// pass-through is exercised.
FallbackCase Case(std::string name, const StreamBuilder& b, const std::string& what) {
  Bytes stream = b.bytes();
  for (int i = 0; i < 64; i++) stream.push_back(uint8_t(i * 13));
  return {std::move(name), stream, HexOffset(b.mark()) + what};
}

StreamBuilder Prelude() { return std::move(StreamBuilder().Prelude()); }
StreamBuilder InRamStart() { return std::move(Prelude().RamStart()); }
// Inside a RAM PART section, after one ZERO record that named block "pc.ram".
StreamBuilder InRamPart() { return std::move(InRamStart().Part(2).Zero(0, "pc.ram")); }

std::vector<FallbackCase> FallbackCases() {
  std::vector<FallbackCase> c;
  c.push_back(Case("bad magic", StreamBuilder().Mark().Header(0),
                   "bad magic 00000000 (not a QEMU main stream)"));
  c.push_back(Case("version", StreamBuilder().BE32(kFileMagic).Mark().BE32(2),
                   "unsupported stream version 2"));
  c.push_back(Case("page bits", Prelude().Subsection(kConfigTargetPageBits).Mark().BE32(10),
                   "target page size 1024 not supported"));
  c.push_back(Case("capability",
                   Prelude()
                       .Subsection(kConfigCapabilities)
                       .BE32(2)
                       .Counted(kCapXIgnoreShared)
                       .Mark()
                       .Counted("mapped-ram"),
                   "capability 'mapped-ram' not supported"));
  c.push_back(Case("config subsection", Prelude().Mark().Subsection("configuration/foo"),
                   "unknown configuration subsection 'configuration/foo'"));
  c.push_back(Case("top-level subsection", Prelude().Mark().Subsection("timer/x\n"),
                   "subsection 'timer/x\\x0a' at top level"));
  c.push_back(Case("postcopy",
                   Prelude()
                       .Command(kCmdOpenReturnPath)
                       .Ping(1)
                       .Mark()
                       .Command(kCmdPostcopyAdvise, Bytes(16, 0)),
                   "postcopy (POSTCOPY_ADVISE command)"));
  struct {
    uint16_t cmd;
    size_t len;
    const char* what;
  } cmds[] = {
      {kCmdPackaged, 4, "command PACKAGED (7) not supported"},
      {kCmdEnableColo, 0, "command ENABLE_COLO (8) not supported"},
      {kCmdPostcopyResume, 0, "command POSTCOPY_RESUME (9) not supported"},
      {kCmdRecvBitmap, 7, "command RECV_BITMAP (10) not supported"},
      {kCmdPostcopyRamDiscard, 9, "command POSTCOPY_RAM_DISCARD (6) not supported"},
      {kCmdPostcopyListen, 0, "command POSTCOPY_LISTEN (4) not supported"},
      {kCmdPostcopyRun, 0, "command POSTCOPY_RUN (5) not supported"},
      {99, 0, "unknown command 99"},
      {kCmdPing, 5, "command PING with length 5 (expected 4)"},
      {kCmdOpenReturnPath, 4, "command OPEN_RETURN_PATH with length 4 (expected 0)"},
      {kCmdSwitchoverStart, 1, "command SWITCHOVER_START with length 1 (expected 0)"},
  };
  for (const auto& k : cmds) {
    c.push_back(Case(k.what, InRamStart().Mark().Command(k.cmd, Bytes(k.len, 1)), k.what));
  }
  c.push_back(Case("block migration", Prelude().Mark().Start(1, "block", 1),
                   "non-RAM section 'block' (START) before RAM END"));
  c.push_back(Case("early FULL",
                   InRamStart().Mark().Full(40, "0000:00:03.0/virtio-mem-device-early"),
                   "non-RAM section '0000:00:03.0/virtio-mem-device-early' (FULL) before RAM END"));
  c.push_back(Case("RAM as FULL", Prelude().Mark().Full(2, "ram", 4), "RAM section sent as FULL"));
  c.push_back(Case("RAM version", Prelude().Mark().Start(2, "ram", 3),
                   "RAM section version 3 not supported"));
  c.push_back(Case("unknown PART", InRamStart().Mark().Part(7), "PART for unknown section id 7"));
  c.push_back(Case("unknown END", InRamStart().Mark().End(1), "END for unknown section id 1"));
  struct {
    uint64_t flags;
    const char* block;
    const char* what;
  } recs[] = {
      {kRamFlagXbzrle, "pc.ram", "XBZRLE page (xbzrle capability)"},
      {kRamFlagXbzrle | kRamFlagContinue, "", "XBZRLE page (xbzrle capability)"},
      {kRamFlagCompressPage, "pc.ram", "COMPRESS_PAGE record (compress capability)"},
      {kRamFlagHook, "", "RAM HOOK record (RDMA)"},
      {kRamFlagFull, "", "obsolete RAM FULL record"},
      {kRamFlagMemSize, "", "MEM_SIZE outside RAM START"},
      {0x400 | kRamFlagPage, "", "unknown RAM flags 0x400"},
      {0xc00 | kRamFlagEos, "", "unknown RAM flags 0xc00"},
      {kRamFlagZero | kRamFlagPage, "", "unexpected RAM flags 0xa"},
      {0, "", "unexpected RAM flags 0x0"},
      {kRamFlagEos | kRamFlagMultifdFlush, "", "unexpected RAM flags 0x210"},
  };
  for (const auto& r : recs) {
    StreamBuilder b = InRamPart();
    b.Mark().BE64(0x5000 | r.flags);
    if (*r.block) b.Counted(r.block);
    c.push_back(Case(r.what, b, r.what));
  }
  c.push_back(Case("CONTINUE first", InRamStart().Part(2).Mark().Page(0x1000, "", PageContent(1)),
                   "CONTINUE record without a previous block"));
  c.push_back(Case("block list",
                   Prelude().Start(2, "ram").MemSize(0x2000).Counted("pc.ram").Mark().BE64(0x3000),
                   "RAM block 'pc.ram' length 0x3000 exceeds the rest of MEM_SIZE 0x2000"));
  c.push_back(Case("footer id", InRamPart().Eos().Mark().Footer(3),
                   "missing footer of section 2 (found 7e00000003)"));
  // The footer is 5 bytes: EOF and the first 4 bytes of junk (0, 13, 26, 39).
  c.push_back(Case("no footer", InRamPart().Eos().Mark().Eof(),
                   "missing footer of section 2 (found 00000d1a27)"));
  c.push_back(Case("record type", InRamStart().Mark().U8(0x42), "unknown record type 0x42"));
  c.push_back(
      Case("VMDESC", InRamStart().Mark().U8(kRecVmDescription), "VMDESCRIPTION before EOF"));
  c.push_back(Case("second CONFIGURATION", Prelude().Ping(1).Mark().Config("pc"),
                   "CONFIGURATION after the first record"));
  c.push_back(
      Case("stray footer", InRamStart().Mark().Footer(2), "section footer outside a section"));
  return c;
}

TEST(StreamParserFallbackTest, ExactReasonsUnderEveryChunking) {
  std::vector<FallbackCase> cases = FallbackCases();
  ASSERT_EQ(cases.size(), 43u);
  for (const FallbackCase& c : cases) {
    SCOPED_TRACE(c.name);
    for (size_t chunk : {c.stream.size(), size_t(1), size_t(2), size_t(7), size_t(64)}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      ParseOutcome o = ParseInChunksOf(c.stream, chunk);
      EXPECT_EQ(o.mode, ParseMode::kPassThrough);
      EXPECT_EQ(o.reason, c.reason);
      EXPECT_EQ(o.sink.out, c.stream);
      EXPECT_EQ(o.sink.bad_calls, 0u);
      // The unit holding the defect (at most a 5-byte footer) may reach into the junk.
      EXPECT_GE(o.stats.passthrough_bytes, 64u - 4);
      EXPECT_LT(o.stats.passthrough_bytes, c.stream.size());
    }
  }
}

TEST(StreamParserFallbackTest, PassThroughForwardsLaterFeedsWhole) {
  StreamBuilder b;
  b.Prelude().Command(kCmdPostcopyAdvise, Bytes(16, 0));
  RecordingSink sink;
  StreamParser parser(&sink);
  parser.Feed(b.bytes());
  ASSERT_EQ(parser.mode(), ParseMode::kPassThrough);
  size_t calls = sink.literal_calls;
  Bytes more = PageContent(9);
  parser.Feed(more);
  EXPECT_EQ(sink.literal_calls, calls + 1);
  EXPECT_TRUE(sink.pages.empty());
  EXPECT_EQ(parser.stats().passthrough_bytes, 16 + kPageSize);  // ADVISE payload + page
  parser.Finish();
  EXPECT_EQ(parser.fallback_reason(), "offset 0x17: postcopy (POSTCOPY_ADVISE command)");
}

// ---- Truncation, corruption, noise ------------------------------------------------------

TEST(StreamParserTruncationTest, EveryPrefix) {
  Bytes in = BasicStream();
  for (size_t len = 0; len <= in.size(); len++) {
    SCOPED_TRACE("prefix " + std::to_string(len));
    ByteView prefix = ByteView(in).first(len);
    for (size_t chunk : {len + 1, size_t(5)}) {
      ParseOutcome o = ParseInChunksOf(prefix, chunk);
      ASSERT_EQ(o.sink.out, Bytes(prefix.begin(), prefix.end()));
      EXPECT_EQ(o.sink.bad_calls, 0u);
      if (o.mode == ParseMode::kPassThrough) {
        EXPECT_EQ(o.reason.rfind(HexOffset(len) + "stream ended inside ", 0), 0u) << o.reason;
      } else {
        EXPECT_EQ(o.reason, "");
      }
    }
  }
}

TEST(StreamParserTruncationTest, ExactReasons) {
  Bytes in = BasicStream();
  auto reason_at = [&](size_t len) { return ParseWhole(ByteView(in).first(len)).reason; };
  EXPECT_EQ(reason_at(0), "");
  EXPECT_EQ(reason_at(5), "offset 0x5: stream ended inside the file header");
  EXPECT_EQ(reason_at(8), "");  // between records
  EXPECT_EQ(reason_at(12), "offset 0xc: stream ended inside CONFIGURATION");
  EXPECT_EQ(reason_at(23), "");  // after CONFIGURATION
  EXPECT_EQ(reason_at(26), "offset 0x1a: stream ended inside a section header");
  EXPECT_EQ(reason_at(40), "offset 0x28: stream ended inside a RAM section");
  EXPECT_EQ(reason_at(50), "offset 0x32: stream ended inside the RAM block list");
  // Inside the first page payload: the held-back part is released as a literal.
  ParseOutcome o = ParseInChunksOf(ByteView(in).first(300), 7);
  EXPECT_EQ(o.reason, "offset 0x12c: stream ended inside a PAGE payload");
  EXPECT_EQ(o.sink.out, Bytes(in.begin(), in.begin() + 300));
  EXPECT_TRUE(o.sink.pages.empty());
}

TEST(StreamParserCorruptionTest, EveryByteFlipped) {
  Bytes in = BasicStream();
  int tails = 0;
  for (size_t i = 0; i < in.size(); i++) {
    for (uint8_t mask : {uint8_t(0xff), uint8_t(0x01), uint8_t(0x40)}) {
      Bytes bad = in;
      bad[i] ^= mask;
      for (size_t chunk : {bad.size(), size_t(7)}) {
        ParseOutcome o = ParseInChunksOf(bad, chunk);
        ASSERT_EQ(o.sink.out, bad) << "byte " << i;
        ASSERT_EQ(o.sink.bad_calls, 0u);
        tails += o.mode == ParseMode::kTail;
      }
    }
  }
  // Flips inside page payloads and the device-state tail are harmless.
  EXPECT_GT(tails, 0);
}

TEST(StreamParserCorruptionTest, PayloadFlipsDoNotDisturbParsing) {
  Bytes in = BasicStream();
  ParseOutcome clean = ParseWhole(in);
  ASSERT_EQ(clean.sink.page_ptrs.size(), 3u);
  const uint8_t* first_page = clean.sink.page_ptrs[0];
  size_t start = first_page - in.data();
  for (size_t i = start; i < start + kPageSize; i += 97) {
    Bytes bad = in;
    bad[i] ^= 0xff;
    ParseOutcome o = ParseInChunksOf(bad, 13);
    EXPECT_EQ(o.mode, ParseMode::kTail);
    EXPECT_EQ(o.stats.pages, 3u);
    EXPECT_EQ(o.sink.out, bad);
  }
}

TEST(StreamParserNoiseTest, RandomBytes) {
  std::mt19937 rng(42);
  Bytes prelude = StreamBuilder().Prelude().RamStart().Part(2).bytes();
  for (int round = 0; round < 400; round++) {
    Bytes in;
    if (round % 2) in = prelude;  // noise inside a RAM section, too
    size_t n = rng() % 20000;
    for (size_t i = 0; i < n; i++) in.push_back(uint8_t(rng()));
    ParseOutcome o = ParseRandomChunks(in, round, 3000);
    ASSERT_EQ(o.sink.out, in) << "round " << round;
    ASSERT_EQ(o.sink.bad_calls, 0u);
  }
}

// The start of the RAM END section is the in-band sign that the source VM stopped (its
// last round); a page split across two Feed calls is the only thing held back.
TEST(StreamParserTest, ReportsTheLastRoundAndWhatItHoldsBack) {
  StreamBuilder b;
  b.Prelude().RamStart().Part(2).Page(0, "pc.ram", PageContent(1)).Eos().Footer(2);
  size_t before_end = b.size();
  b.End(2).Page(0x1000, "", PageContent(2)).Eos().Footer(2).Eof();
  RecordingSink sink;
  StreamParser p(&sink);
  p.Feed(ByteView(b.bytes()).first(before_end));
  EXPECT_FALSE(p.stats().ram_end_started);
  EXPECT_EQ(p.held_back(), 0u);
  size_t into_page = before_end + 5 + 8 + 100;  // END header, record word, 100 page bytes
  p.Feed(ByteView(b.bytes()).subspan(before_end, into_page - before_end));
  EXPECT_TRUE(p.stats().ram_end_started);
  EXPECT_EQ(p.held_back(), 100u);
  p.Feed(ByteView(b.bytes()).subspan(into_page));
  EXPECT_EQ(p.held_back(), 0u);
  p.Finish();
  EXPECT_EQ(sink.out, b.bytes());
}

}  // namespace
}  // namespace gangmig::qemu_stream
