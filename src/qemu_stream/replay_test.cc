// Replays the real QEMU captures (testdata/captures.tar.xz, unpacked by the build into
// GANGMIG_CAPTURES_DIR) through StreamParser under several chunkings: the output must be
// the input byte for byte, and the mode, reason and counts must match what is known about
// each capture.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "qemu_stream/parser_test_util.h"
#include "qemu_stream/stream_parser.h"

namespace gangmig::qemu_stream {
namespace {

Bytes ReadCapture(const std::string& name) {
  std::ifstream f(std::string(GANGMIG_CAPTURES_DIR) + "/" + name, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

struct Capture {
  const char* file;
  ParseMode mode;
  const char* reason;   // exact fallback reason ("" for kTail)
  const char* mention;  // a word the reason must contain (kept separate for readability)
  int64_t pages;        // -1: not checked
  int64_t zero_pages;
  int64_t ram_sections;
  bool multifd_flush;
  bool return_path;
};

// Expected counts of the precopy captures are the PAGE records, ZERO records and EOS
// records (one per RAM section) that shared/qemu-stream/tools/parse_stream.py reports for
// each file ("page", "zero", "eos" in its stats line). Fallback offsets agree with the
// record offsets it prints (POSTCOPY_ADVISE @37 / @38, block START @23, early FULL @312).
const Capture kCaptures[] = {
    {"cap72-precopy-running/conn0.fwd.bin", ParseMode::kTail, "", "", 329, 36759, 17, false, false},
    {"cap100-precopy-running/conn0.fwd.bin", ParseMode::kTail, "", "", 386, 36708, 9, false, false},
    {"cap72-rp-uuid-ignoreshared/conn0.fwd.bin", ParseMode::kTail, "", "", 324, 36759, 14, false,
     true},
    {"cap100-rp-switchoverack/conn0.fwd.bin", ParseMode::kTail, "", "", 386, 36708, 9, false, true},
    {"cap72-precopy-paused-exec.bin", ParseMode::kTail, "", "", 122, 36952, 9, false, false},
    {"cap72-multifd2/conn0.fwd.bin", ParseMode::kTail, "", "", 0, 36759, 11, false, false},
    {"cap100-multifd2/conn0.fwd.bin", ParseMode::kTail, "", "", 0, 0, 8, true, false},
    {"cap100-multifd2-zstd/conn0.fwd.bin", ParseMode::kTail, "", "", 0, 0, 7, true, false},
    {"cap100-m72-multifd2/conn0.fwd.bin", ParseMode::kTail, "", "", 0, 36708, 12, false, false},
    {"cap72-postcopy/conn0.fwd.bin", ParseMode::kPassThrough,
     "offset 0x25: postcopy (POSTCOPY_ADVISE command)", "postcopy", 0, 0, 0, false, true},
    {"cap72-postcopy-preempt/conn0.fwd.bin", ParseMode::kPassThrough,
     "offset 0x25: postcopy (POSTCOPY_ADVISE command)", "postcopy", 0, 0, 0, false, true},
    {"cap100-postcopy/conn0.fwd.bin", ParseMode::kPassThrough,
     "offset 0x26: postcopy (POSTCOPY_ADVISE command)", "postcopy", 0, 0, 0, false, true},
    {"cap100-postcopy-preempt/conn0.fwd.bin", ParseMode::kPassThrough,
     "offset 0x26: postcopy (POSTCOPY_ADVISE command)", "postcopy", 0, 0, 0, false, true},
    {"cap72-xbzrle/conn0.fwd.bin", ParseMode::kPassThrough, nullptr, "XBZRLE", -1, -1, -1, false,
     false},
    {"cap72-compress/conn0.fwd.bin", ParseMode::kPassThrough, nullptr, "COMPRESS", -1, -1, -1,
     false, false},
    {"cap72-blockmig/conn0.fwd.bin", ParseMode::kPassThrough,
     "offset 0x17: non-RAM section 'block' (START) before RAM END", "'block'", 0, 0, 0, false,
     false},
    {"cap100-virtiomem-early/conn0.fwd.bin", ParseMode::kPassThrough,
     "offset 0x138: non-RAM section '0000:00:03.0/virtio-mem-device-early' (FULL) before RAM "
     "END",
     "virtio-mem-device-early", 0, 0, 1, false, false},
    // The postcopy preempt channel starts with bare RAM records, not "QEVM".
    {"cap72-postcopy-preempt/conn1.fwd.bin", ParseMode::kPassThrough,
     "offset 0x0: bad magic 00000000 (not a QEMU main stream)", "bad magic", 0, 0, 0, false, false},
};

void ExpectCapture(const Capture& c, const Bytes& in, const ParseOutcome& o) {
  ASSERT_EQ(o.sink.out.size(), in.size());
  ASSERT_TRUE(o.sink.out == in) << "output differs from input";
  EXPECT_EQ(o.sink.bad_calls, 0u);
  EXPECT_EQ(o.mode, c.mode);
  if (c.reason) {
    EXPECT_EQ(o.reason, c.reason);
  }
  EXPECT_NE(o.reason.find(c.mention), std::string::npos) << o.reason;
  EXPECT_EQ(o.stats.bytes_in, in.size());
  EXPECT_EQ(o.stats.pages, o.sink.pages.size());
  if (c.pages >= 0) {
    EXPECT_EQ(int64_t(o.stats.pages), c.pages);
  }
  if (c.zero_pages >= 0) {
    EXPECT_EQ(int64_t(o.stats.zero_pages), c.zero_pages);
  }
  if (c.ram_sections >= 0) {
    EXPECT_EQ(int64_t(o.stats.ram_sections), c.ram_sections);
  }
  EXPECT_EQ(o.stats.multifd_flush_seen, c.multifd_flush);
  EXPECT_EQ(o.stats.return_path, c.return_path);
  if (c.mode == ParseMode::kPassThrough) {
    EXPECT_GT(o.stats.passthrough_bytes, 0u);
  } else {
    EXPECT_EQ(o.stats.passthrough_bytes, 0u);
  }
}

TEST(StreamParserReplayTest, Captures) {
  for (const Capture& c : kCaptures) {
    SCOPED_TRACE(c.file);
    Bytes in = ReadCapture(c.file);
    ASSERT_GT(in.size(), 0u) << "missing capture under " << GANGMIG_CAPTURES_DIR;
    ExpectCapture(c, in, ParseWhole(in));
    ExpectCapture(c, in, ParseInChunksOf(in, 32 * 1024));  // QEMUFile's buffer size
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      ExpectCapture(c, in, ParseRandomChunks(in, seed));
    }
  }
}

TEST(StreamParserReplayTest, XbzrleAndCompressStopAtTheirFirstRecord) {
  for (const char* file : {"cap72-xbzrle/conn0.fwd.bin", "cap72-compress/conn0.fwd.bin"}) {
    SCOPED_TRACE(file);
    Bytes in = ReadCapture(file);
    ParseOutcome o = ParseWhole(in);
    // The reason's offset must point at a RAM record word carrying that flag.
    size_t at = std::stoul(o.reason.substr(std::string("offset ").size()), nullptr, 16);
    ASSERT_LE(at + 8, in.size());
    uint64_t flags = LoadBE64(in.data() + at) & 0x3ff;
    EXPECT_TRUE(flags & 0x140) << std::hex << flags << " " << o.reason;
  }
}

}  // namespace
}  // namespace gangmig::qemu_stream
