// The whole data path without sockets or QEMU: captured QEMU streams of several VMs go
// through the source core (parse, dedup, delta, frames), records (zstd, seal), arbitrary
// network-sized pieces, then the record opener and the destination core. Every VM's
// rebuilt stream must equal its input byte for byte, with each encoding on and off.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <unordered_set>

#include "core/dest_core.h"
#include "core/source_core.h"
#include "encode/frame_compressor.h"
#include "qemu_stream/parser_test_util.h"
#include "wire/frame.h"
#include "wire/record.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace gangmig::core {
namespace {

Bytes ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

std::vector<std::string> CaptureStreams() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(GANGMIG_CAPTURES_DIR)) {
    if (e.is_directory()) {
      for (const char* c : {"conn0.fwd.bin", "conn1.fwd.bin", "conn2.fwd.bin"}) {
        auto p = e.path() / c;
        if (std::filesystem::exists(p) && std::filesystem::file_size(p) > 0) out.push_back(p);
      }
    } else if (e.path().extension() == ".bin") {
      out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct GangResult {
  std::vector<Bytes> rebuilt;
  uint64_t pages_sent = 0, pages_referenced = 0, pages_delta = 0;
  uint64_t link_bytes = 0;
  Bytes wire;  // what crossed the link
  core::DestStats dest;
};

// Which encodings a run uses (both ends agree on them, as after the handshake).
struct Encodings {
  bool zstd = false;
  bool delta = false;
  bool cache = false;  // a receiver summary that claims every page: every new page a CREF
  uint16_t features() const {
    return uint16_t((zstd ? wire::kFeatureZstd : 0) | (delta ? wire::kFeatureDelta : 0) |
                    (cache ? wire::kFeatureCache : 0));
  }
};

// Collects what the destination core rebuilds, per VM (channel 0 only).
struct Rebuilder : core::DestCore::Output {
  std::vector<Bytes>* out;
  Status OnStreamBytes(const wire::Frame& f, ByteView bytes) override {
    PutBytes(&out->at(f.vm), bytes);
    return Status::Ok();
  }
  Status OnControl(const wire::Frame&) override { return Status::Ok(); }
  // A CREF resolves to what the sender kept for it (as a FILL would bring it), checked
  // against its key as the receiver checks it.
  const core::SourceCore* source = nullptr;
  index::Sha256Pages fp;
  Result<ByteView> OnCref(uint32_t cref, ByteView key) override {
    ByteView page = source->KeptCref(cref);
    if (page.empty()) return Status::Error("CREF " + std::to_string(cref) + " not kept");
    index::Digest d = fp.Of(page);
    if (!std::equal(key.begin(), key.end(), d.bytes.begin()))
      return Status::Error("CREF " + std::to_string(cref) + " names another page");
    return page;
  }
};

// Sends `inputs` (one main stream per VM) through the source core -> records (zstd if
// asked) -> the destination core, interleaving VMs in random chunk sizes and cutting the
// link's bytes into random pieces.
GangResult RunGang(const std::vector<Bytes>& inputs, uint32_t seed,
                   const index::PageIndex::Options& index_options = {}, Encodings enc = {}) {
  std::mt19937 rng(seed);
  const Bytes key_c2s(32, 7);
  wire::RecordSealer sealer(key_c2s);
  wire::RecordWriter writer(&sealer);
  encode::FrameCompressor zstd({.mode = encode::CompressionOptions::Mode::kAlways});
  if (enc.zstd) writer.SetTransform(&zstd);
  core::SourceCore source(
      {.index = index_options, .delta = enc.delta, .dest_cache = enc.cache, .max_unacked_crefs = 1 << 20},
      writer.frames());
  if (enc.cache) {  // a summary whose every bit is set, in two pieces
    Bytes piece = {7, 16, 0, 0, 0, 0};
    piece.resize(6 + 4096, 0xff);
    EXPECT_TRUE(source.OnSummary(piece).ok());
    piece[4] = 0x10;  // offset 4096
    EXPECT_TRUE(source.OnSummary(piece).ok());
  }
  for (size_t i = 0; i < inputs.size(); ++i) source.OpenChannel(uint16_t(i), 0);
  Bytes wire_bytes;
  std::vector<size_t> pos(inputs.size(), 0);
  for (bool more = true; more;) {
    more = false;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (pos[i] >= inputs[i].size()) continue;
      size_t n = std::min<size_t>(inputs[i].size() - pos[i], 1 + rng() % 300000);
      source.Feed(uint16_t(i), 0, ByteView(inputs[i].data() + pos[i], n));
      pos[i] += n;
      if (pos[i] == inputs[i].size()) source.Close(uint16_t(i), 0);
      writer.SealIfFull(&wire_bytes);
      more = true;
    }
  }
  writer.Flush(&wire_bytes);
  GangResult r;
  r.link_bytes = wire_bytes.size();
  r.wire = wire_bytes;
  r.rebuilt.resize(inputs.size());
  wire::RecordOpener opener(key_c2s);
  core::DestCore dest(enc.features());
  Rebuilder rebuilder;
  rebuilder.out = &r.rebuilt;
  rebuilder.source = &source;
  for (size_t at = 0; at < wire_bytes.size();) {
    size_t n = std::min<size_t>(wire_bytes.size() - at, 1 + rng() % 70000);
    opener.Feed(ByteView(wire_bytes.data() + at, n));
    at += n;
    Status st = wire::ForEachFrame(
        &opener, "from sender", [&](const wire::Frame& f) { return dest.OnFrame(f, &rebuilder); });
    EXPECT_TRUE(st.ok()) << st.message();
  }
  EXPECT_TRUE(opener.AtEnd().ok());
  for (size_t i = 0; i < inputs.size(); ++i) {
    r.pages_sent += source.stats(uint16_t(i)).pages_sent;
    r.pages_referenced += source.stats(uint16_t(i)).pages_referenced;
    r.pages_delta += source.stats(uint16_t(i)).pages_delta;
  }
  r.dest = dest.stats();
  return r;
}

// Every captured stream, with each encoding on and off.
class PipelineEncodings : public ::testing::TestWithParam<Encodings> {};

TEST_P(PipelineEncodings, EveryCapturedStreamIsRebuiltByteForByte) {
  std::vector<std::string> paths = CaptureStreams();
  ASSERT_GE(paths.size(), 20u);
  std::vector<Bytes> inputs;
  for (const auto& p : paths) inputs.push_back(ReadAll(p));
  for (uint32_t seed : {1u, 2u, 3u}) {
    GangResult r = RunGang(inputs, seed, {}, GetParam());
    if (GetParam().zstd) {
      EXPECT_GT(r.dest.zframes, 0u);
    }
    if (GetParam().cache) {  // every new content went as a CREF, with REFs and DELTAs to it
      EXPECT_EQ(r.pages_sent, 0u);
      EXPECT_GT(r.dest.crefs, 500u);
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      ASSERT_EQ(r.rebuilt[i].size(), inputs[i].size()) << paths[i];
      EXPECT_TRUE(r.rebuilt[i] == inputs[i]) << paths[i];
    }
    EXPECT_GT(r.pages_referenced, 0u);
  }
}

TEST(PipelineTest, EachDistinctPageCrossesOnce) {
  // The same guest twice plus a second QEMU version: every distinct content is sent
  // exactly once, whichever VM carries it first.
  std::string dir = GANGMIG_CAPTURES_DIR;
  Bytes a = ReadAll(dir + "/cap72-precopy-running/conn0.fwd.bin");
  Bytes b = ReadAll(dir + "/cap100-precopy-running/conn0.fwd.bin");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  std::vector<Bytes> inputs = {a, a, b};

  // Expected: distinct page payloads over the inputs, found by an independent walk
  // that collects what the parser reports as pages.
  struct Collect : qemu_stream::StreamSink {
    std::set<Bytes> distinct;
    uint64_t pages = 0;
    void OnLiteral(ByteView) override {}
    void OnPage(ByteView p, const qemu_stream::PageLocation&) override {
      distinct.insert(Bytes(p.begin(), p.end()));
      ++pages;
    }
  } collect;
  for (const Bytes& in : inputs) {
    qemu_stream::StreamParser p(&collect);
    p.Feed(in);
    p.Finish();
  }
  GangResult r = RunGang(inputs, 9);
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_TRUE(r.rebuilt[i] == inputs[i]);
  EXPECT_EQ(r.pages_sent, collect.distinct.size());
  EXPECT_EQ(r.pages_sent + r.pages_referenced, collect.pages);
  uint64_t input_bytes = 2 * a.size() + b.size();
  EXPECT_LT(r.link_bytes, input_bytes * 3 / 4);  // the duplicate guest costs ~nothing
}

// A crippled fast hash (64 values: collisions everywhere, full chains) and a copy budget
// of 100 pages (the rest proven by SHA-256): still byte-exact, and a repeat is still found
// whenever its chain had room.
TEST(PipelineTest, HashCollisionsAndSha256ProofStayByteExact) {
  std::vector<std::string> paths = CaptureStreams();
  std::vector<Bytes> inputs;
  for (const auto& p : paths) inputs.push_back(ReadAll(p));
  GangResult r = RunGang(inputs, 4, {.copy_budget_bytes = 100 * 4096, .seed = 3, .hash_bits = 6});
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_TRUE(r.rebuilt[i] == inputs[i]) << paths[i];
  EXPECT_GT(r.pages_referenced, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllEncodings, PipelineEncodings,
                         ::testing::Values(Encodings{false, false}, Encodings{true, false},
                                           Encodings{false, true}, Encodings{true, true},
                                           Encodings{false, true, true},
                                           Encodings{true, true, true}),
                         [](const auto& info) {
                           return std::string(info.param.zstd ? "zstd" : "raw") +
                                  (info.param.delta ? "_delta" : "_whole") +
                                  (info.param.cache ? "_cref" : "");
                         });

// A stream of three pre-copy rounds over the same 64 pages: round 1 sends them all,
// rounds 2 and 3 re-send every page with a few bytes changed (as a guest that updates
// counters or list pointers does). With delta on, rounds 2 and 3 go as DELTA frames,
// round 3's against round 2's result (a chain), and the rebuilt stream is exact.
Bytes ThreeRoundStream(uint32_t seed) {
  std::mt19937 rng(seed);
  const int kPages = 64;
  std::vector<Bytes> pages(kPages, Bytes(qemu_stream::kPageSize));
  for (auto& p : pages)
    for (auto& b : p) b = uint8_t(rng());
  qemu_stream::StreamBuilder b;
  b.Prelude().Start(2, "ram").MemSize(kPages * 4096).Block("pc.ram", kPages * 4096).Eos().Footer(2);
  for (int round = 0; round < 3; ++round) {
    b.Part(2);
    for (int i = 0; i < kPages; ++i) {
      if (round > 0) {
        for (int k = 0; k < 3; ++k) pages[i][rng() % 4096] ^= uint8_t(1 + rng() % 255);
        if (i % 8 == 0) std::fill(pages[i].begin() + 100, pages[i].begin() + 900, uint8_t(round));
      }
      b.Page(uint64_t(i) * 4096, i == 0 ? "pc.ram" : "", pages[i]);
    }
    b.Eos().Footer(2);
  }
  b.End(2).Eos().Footer(2).Eof();
  return b.bytes();
}

TEST(PipelineTest, DeltaChainsAcrossRoundsAreExact) {
  std::vector<Bytes> inputs = {ThreeRoundStream(1), ThreeRoundStream(2)};
  for (Encodings enc : {Encodings{false, true}, Encodings{true, true}}) {
    GangResult r = RunGang(inputs, 5, {}, enc);
    for (size_t i = 0; i < inputs.size(); ++i) EXPECT_TRUE(r.rebuilt[i] == inputs[i]);
    EXPECT_EQ(r.pages_delta, 2u * 2 * 64);  // rounds 2 and 3 of both VMs
    EXPECT_EQ(r.dest.deltas, r.pages_delta);
    EXPECT_EQ(r.pages_sent, 2u * 64);
  }
  GangResult whole = RunGang(inputs, 5, {}, {false, false});
  GangResult delta = RunGang(inputs, 5, {}, {false, true});
  // 4 of 6 rounds cost a few bytes a page: little more than the 2 whole rounds
  EXPECT_LT(delta.link_bytes * 5, whole.link_bytes * 2);
}

// Past the copy budget there is nothing to diff against: pages go whole, still exact.
TEST(PipelineTest, DeltaNeedsTheSendersCopy) {
  std::vector<Bytes> inputs = {ThreeRoundStream(3)};
  GangResult r = RunGang(inputs, 6, {.copy_budget_bytes = 10 * 4096}, {true, true});
  EXPECT_TRUE(r.rebuilt[0] == inputs[0]);
  EXPECT_GT(r.pages_delta, 0u);
  EXPECT_LT(r.pages_delta, 2u * 64);
}

// Collisions everywhere plus a tiny copy budget, with every encoding on.
TEST(PipelineTest, HashCollisionsWithEncodingsStayByteExact) {
  std::vector<std::string> paths = CaptureStreams();
  std::vector<Bytes> inputs;
  for (const auto& p : paths) inputs.push_back(ReadAll(p));
  inputs.push_back(ThreeRoundStream(4));
  GangResult r = RunGang(inputs, 7, {.copy_budget_bytes = 100 * 4096, .seed = 3, .hash_bits = 6},
                         {true, true});
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_TRUE(r.rebuilt[i] == inputs[i]);
}

// Confidentiality: with compression off (so a page would cross verbatim if records were
// only authenticated), no 32-byte piece of any captured guest page, of the streams'
// non-page bytes (device state, RAM block names) or of the VM names appears on the link.
TEST(PipelineConfidentiality, NoGuestByteCrossesTheLinkInClear) {
  std::vector<std::string> paths = CaptureStreams();
  std::vector<Bytes> inputs;
  for (const auto& p : paths) inputs.push_back(ReadAll(p));
  const std::string marker = "root_password=hunter2-gangmig-marker-0123456789";
  Bytes planted(wire::kPageSize, 0);
  std::copy(marker.begin(), marker.end(), planted.begin() + 100);
  qemu_stream::StreamBuilder b;
  b.Prelude().RamStart().Part(2).Page(0x1000, "pc.ram", planted).Eos().Eof();
  inputs.push_back(b.bytes());
  GangResult r = RunGang(inputs, 1);
  ASSERT_EQ(r.rebuilt.back(), inputs.back());
  // Every 32-byte window of the inputs that is not one repeated byte, by hash.
  std::unordered_set<uint64_t> secrets;
  secrets.reserve(4u << 20);
  for (const Bytes& in : inputs) {
    for (size_t at = 0; at + 32 <= in.size(); at += 16) {
      ByteView w(in.data() + at, 32);
      if (std::all_of(w.begin(), w.end(), [&](uint8_t b) { return b == w[0]; })) continue;
      secrets.insert(XXH3_64bits(w.data(), w.size()));
    }
  }
  ASSERT_GT(secrets.size(), 100000u);
  auto hits = [&](const Bytes& b) {
    size_t found = 0;
    for (size_t at = 0; at + 32 <= b.size(); ++at)
      found += secrets.count(XXH3_64bits(b.data() + at, 32));
    return found;
  };
  ASSERT_GT(hits(inputs.back()), 0u);  // the scan does see guest bytes where they are
  EXPECT_EQ(hits(r.wire), 0u) << "guest bytes visible on the link";
  std::string wire(r.wire.begin(), r.wire.end());
  EXPECT_EQ(wire.find("root_password"), std::string::npos);
}

}  // namespace
}  // namespace gangmig::core
