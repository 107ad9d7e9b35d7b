// Micro-benchmarks of the hot path, one core: stream parsing, fingerprinting, the page
// index, frame encoding/decoding, and the whole sender and receiver paths in pages per
// second. Run: build/gangmig_bench --benchmark_repetitions=5
// --benchmark_report_aggregates_only=true (median and min are reported).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include "base/alloc.h"
#include "core/dest_core.h"
#include "core/source_core.h"
#include "encode/frame_compressor.h"
#include "index/page_index.h"
#include "migrate/seal_pipeline.h"
#include "net/socket.h"
#include "qemu_stream/stream_format.h"
#include "qemu_stream/stream_parser.h"
#include "wire/frame.h"
#include "wire/record.h"
#include "wire/record_cipher.h"

namespace gangmig {
namespace {

constexpr int kPages = 16384;  // 64 MiB of guest pages per iteration

// `kPages` pages; every `dup_every`-th page repeats an earlier one (0: all distinct).
// `compressible`: each page holds random bytes in its first half only, the rest a
// repeating pattern (zstd -1 leaves ~55%, about what it leaves of the guests' pages).
std::vector<Bytes> MakePages(int dup_every, bool compressible = false) {
  std::mt19937_64 rng(42);
  std::vector<Bytes> pages;
  for (int i = 0; i < kPages; ++i) {
    if (dup_every && i % dup_every == 0 && i > 0) {
      pages.push_back(pages[rng() % pages.size()]);
      continue;
    }
    Bytes p(4096);
    for (size_t k = 0; k < p.size(); k += 8) {
      uint64_t v = compressible && k >= 2048 ? 0x0101010101010101ull * (k >> 9) : rng();
      memcpy(&p[k], &v, 8);
    }
    pages.push_back(std::move(p));
  }
  return pages;
}

// A valid QEMU main stream (7.2 shape) carrying `pages` as PAGE records of "pc.ram".
Bytes MakeStream(const std::vector<Bytes>& pages) {
  using namespace qemu_stream;
  Bytes s;
  PutBE32(&s, kFileMagic);
  PutBE32(&s, kFileVersion);
  PutU8(&s, kRecSectionStart);
  PutBE32(&s, 2);
  PutU8(&s, 3);
  PutBytes(&s, AsBytes("ram"));
  PutBE32(&s, 0);
  PutBE32(&s, 4);
  uint64_t len = uint64_t(pages.size()) * 4096;
  PutBE64(&s, len | kRamFlagMemSize);
  PutU8(&s, 6);
  PutBytes(&s, AsBytes("pc.ram"));
  PutBE64(&s, len);
  PutBE64(&s, kRamFlagEos);
  PutU8(&s, kRecSectionFooter);
  PutBE32(&s, 2);
  PutU8(&s, kRecSectionPart);
  PutBE32(&s, 2);
  for (size_t i = 0; i < pages.size(); ++i) {
    if (i == 0) {
      PutBE64(&s, kRamFlagPage);
      PutU8(&s, 6);
      PutBytes(&s, AsBytes("pc.ram"));
    } else {
      PutBE64(&s, (uint64_t(i) * 4096) | kRamFlagPage | kRamFlagContinue);
    }
    PutBytes(&s, pages[i]);
  }
  PutBE64(&s, kRamFlagEos);
  PutU8(&s, kRecSectionFooter);
  PutBE32(&s, 2);
  return s;
}

struct NullSink : qemu_stream::StreamSink {
  uint64_t bytes = 0;
  void OnLiteral(ByteView b) override { bytes += b.size(); }
  void OnPage(ByteView p, const qemu_stream::PageLocation&) override { bytes += p[0]; }
};

void FeedChunks(qemu_stream::StreamParser* p, const Bytes& s, size_t chunk) {
  for (size_t at = 0; at < s.size(); at += chunk)
    p->Feed(ByteView(s.data() + at, std::min(chunk, s.size() - at)));
  p->Finish();
}

void BM_ParseStream(benchmark::State& state) {
  Bytes stream = MakeStream(MakePages(0));
  for (auto _ : state) {
    NullSink sink;
    qemu_stream::StreamParser p(&sink);
    FeedChunks(&p, stream, size_t(state.range(0)));
    benchmark::DoNotOptimize(sink.bytes);
  }
  state.SetItemsProcessed(state.iterations() * kPages);
  state.SetBytesProcessed(state.iterations() * int64_t(stream.size()));
}
BENCHMARK(BM_ParseStream)->Arg(32 << 10)->Arg(256 << 10);

void BM_Fingerprint(benchmark::State& state) {
  std::vector<Bytes> pages = MakePages(0);
  index::Sha256Pages fp;
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(fp.Of(pages[i++ % pages.size()]));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_Fingerprint);

// A dropped slab's digests (index/sha256_pages.h): 512 pages at once, multi-buffer.
void BM_FingerprintSlab(benchmark::State& state) {
  Bytes slab(512 * 4096);
  for (size_t i = 0; i < slab.size(); ++i) slab[i] = uint8_t(i * 2654435761u >> 13);
  std::vector<index::Digest> out(512);
  index::Sha256Pages sha;
  for (auto _ : state) {
    sha.Many(slab.data(), 512, 4096, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * 512);
  state.SetBytesProcessed(state.iterations() * 512 * 4096);
}
BENCHMARK(BM_FingerprintSlab);

void BM_FastHash(benchmark::State& state) {
  std::vector<Bytes> pages = MakePages(0);
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(index::FastHashOf(pages[i++ % pages.size()], 7));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_FastHash);

// The whole index step per page: fast hash, lookup, proof of equality (memcmp against the
// copy; Arg 1: SHA-256, as past the copy budget) and insertion. Half the pages repeat.
void BM_IndexFindOrInsert(benchmark::State& state) {
  std::vector<Bytes> pages = MakePages(2);
  uint64_t budget = state.range(0) ? 0 : uint64_t{1} << 30;
  for (auto _ : state) {
    index::PageIndex idx({.copy_budget_bytes = budget, .seed = 7});
    for (const Bytes& p : pages) benchmark::DoNotOptimize(idx.FindOrInsert(p));
  }
  state.SetItemsProcessed(state.iterations() * kPages);
}
BENCHMARK(BM_IndexFindOrInsert)->Arg(0)->Arg(1);

void BM_FrameEncodeAndSeal(benchmark::State& state) {
  std::vector<Bytes> pages = MakePages(0);
  Bytes key(32, 1), out;
  wire::RecordSealer sealer(key);
  wire::RecordWriter writer(&sealer);
  for (auto _ : state) {
    for (int i = 0; i < kPages; ++i) {
      wire::AppendData(writer.frames(), 0, 0, ByteView(pages[i].data(), 9));
      if (i % 2)
        wire::AppendRef(writer.frames(), 0, 0, uint32_t(i));
      else
        wire::AppendPage(writer.frames(), 0, 0, pages[i]);
      writer.SealIfFull(&out);
      out.clear();
    }
    writer.Flush(&out);
    out.clear();
  }
  state.SetItemsProcessed(state.iterations() * kPages);
}
BENCHMARK(BM_FrameEncodeAndSeal);

// The record MAC alone (ChaCha20-Poly1305 over a 256 KiB record), per 4 KiB of body:
// the one pass over every sent page that the dedup work cannot remove.
void BM_RecordCipher(benchmark::State& state) {
  Bytes key(32, 1), record(256 << 10, 0x5a);
  wire::RecordCipher cipher(key);
  uint8_t header[4] = {0, 4, 0, 0};
  uint64_t seq = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(cipher.Seal(seq++, ByteView(header, 4), record.data(), record.size()));
  state.SetItemsProcessed(state.iterations() * int64_t(record.size() / 4096));
  state.SetBytesProcessed(state.iterations() * int64_t(record.size()));
}
BENCHMARK(BM_RecordCipher);

struct SenderPathOptions {
  bool sha256 = false;  // prove equality with SHA-256 instead of copies (past the budget)
  bool seal = true;     // false: frames are built, then dropped unsealed (no record MAC)
  bool keep = false;    // return the wire bytes (else drop each batch, as after send())
  int zstd_level = 0;   // compress every record body at this level (0: no compression)
  int threads = 0;      // SealPipeline workers compressing bodies (0: on this thread)
  benchmark::State* state = nullptr;  // set: copy each chunk to a read buffer untimed
};

// Sender path: parse -> fast hash + proof -> index -> frames -> authenticated records.
// Like the sender, each record is sealed into the buffer of an earlier, sent one (the
// send queue's spare), which then becomes the next pending body. With `state`, each
// 256 KiB chunk is first copied into a read buffer with the clock paused, as recv()
// leaves it in a real session: the path starts at bytes in our buffer (warm in cache),
// not at a 64 MiB array in DRAM.
Bytes SenderPath(const Bytes& stream, const SenderPathOptions& o) {
  Bytes key(32, 1), out, unsealed;
  wire::RecordSealer sealer(key);
  net::OutQueue link;  // "sent" at once: drained after every chunk
  link.KeepSpares(2);
  encode::FrameCompressor zstd(
      {.mode = encode::CompressionOptions::Mode::kAlways, .level = o.zstd_level});
  migrate::SealPipeline pipeline(&sealer, o.zstd_level ? &zstd : nullptr, o.threads, &link);
  wire::RecordWriter writer(&pipeline);
  core::SourceCore source(
      {.index = {.copy_budget_bytes = o.sha256 ? 0 : uint64_t{1} << 30, .seed = 7}},
      o.seal ? writer.frames() : &unsealed);
  source.OpenChannel(0, 0);
  Bytes read_buf(256 << 10);
  auto seal = [&](bool flush) {
    if (!o.seal) {
      benchmark::DoNotOptimize(unsealed.data());
      unsealed.clear();
      return;
    }
    if (flush)
      writer.Flush(nullptr);
    else
      writer.SealIfFull(nullptr);
    pipeline.Collect(/*wait=*/flush);
    link.DrainTo(o.keep ? &out : nullptr);
  };
  for (size_t at = 0; at < stream.size(); at += 256 << 10) {
    ByteView chunk(stream.data() + at, std::min<size_t>(256 << 10, stream.size() - at));
    if (o.state) {
      o.state->PauseTiming();
      std::memcpy(read_buf.data(), chunk.data(), chunk.size());
      chunk = ByteView(read_buf.data(), chunk.size());
      o.state->ResumeTiming();
    }
    source.Feed(0, 0, chunk);
    seal(false);
  }
  source.Close(0, 0);
  seal(true);
  return out;
}

// Args: every Nth page repeats an earlier one (0 = all distinct, 2 = half); 1 = SHA-256
// proofs instead of copies; 0 = stop before sealing records (what the MAC costs); zstd
// level of every record body (0 = none; then pages are half compressible).
void BM_SenderPath(benchmark::State& state) {
  int level = int(state.range(3));
  Bytes stream = MakeStream(MakePages(int(state.range(0)), level != 0));
  SenderPathOptions o{.sha256 = state.range(1) != 0,
                      .seal = state.range(2) != 0,
                      .zstd_level = level,
                      .state = &state};
  for (auto _ : state) benchmark::DoNotOptimize(SenderPath(stream, o));
  state.SetItemsProcessed(state.iterations() * kPages);
  state.SetBytesProcessed(state.iterations() * int64_t(stream.size()));
}
BENCHMARK(BM_SenderPath)
    ->ArgNames({"dup_every", "sha256", "seal", "zstd"})
    ->Args({0, 0, 1, 0})
    ->Args({2, 0, 1, 0})
    ->Args({0, 1, 1, 0})
    ->Args({2, 1, 1, 0})
    ->Args({0, 0, 0, 0})
    ->Args({2, 0, 0, 0})
    ->Args({0, 0, 1, 1})
    ->Args({0, 0, 1, -1})
    ->Args({0, 0, 1, 3});

// The thread-count curve: the sender path with every body compressed at zstd -1 / 1 /
// 3, by 0 (inline), 1, 2, 4 pipeline workers. Wall time (UseRealTime): the workers'
// CPU is not this thread's.
void BM_SenderPathThreads(benchmark::State& state) {
  int level = int(state.range(0));
  Bytes stream = MakeStream(MakePages(0, true));
  SenderPathOptions o{.zstd_level = level, .threads = int(state.range(1)), .state = &state};
  for (auto _ : state) benchmark::DoNotOptimize(SenderPath(stream, o));
  state.SetItemsProcessed(state.iterations() * kPages);
  state.SetBytesProcessed(state.iterations() * int64_t(stream.size()));
}
BENCHMARK(BM_SenderPathThreads)
    ->ArgNames({"zstd", "threads"})
    ->ArgsProduct({{-1, 1, 3}, {0, 1, 2, 4}})
    ->UseRealTime();

// Counts what the destination core rebuilds (pipeline_test checks the bytes themselves).
struct CountingOutput : core::DestCore::Output {
  uint64_t bytes = 0;
  Status OnStreamBytes(const wire::Frame&, ByteView b) override {
    bytes += b.size();
    return Status::Ok();
  }
  Status OnControl(const wire::Frame&) override { return Status::Ok(); }
};

// Receiver path: verify records -> frames (zstd) -> destination core -> stream bytes.
// Args: as the sender's dup_every, and the zstd level the records were made with.
void BM_ReceiverPath(benchmark::State& state) {
  int level = int(state.range(1));
  Bytes stream = MakeStream(MakePages(int(state.range(0)), level != 0));
  Bytes wire_bytes = SenderPath(stream, {.keep = true, .zstd_level = level});
  Bytes key(32, 1);
  for (auto _ : state) {
    wire::RecordOpener opener(key);
    core::DestCore dest(wire::kFeaturesKnown);
    CountingOutput out;
    for (size_t at = 0; at < wire_bytes.size(); at += 256 << 10) {
      opener.Feed(
          ByteView(wire_bytes.data() + at, std::min<size_t>(256 << 10, wire_bytes.size() - at)));
      Status st = wire::ForEachFrame(&opener, "sender",
                                     [&](const wire::Frame& f) { return dest.OnFrame(f, &out); });
      if (!st.ok()) state.SkipWithError(st.message().c_str());
    }
    if (out.bytes != stream.size()) state.SkipWithError("rebuilt stream has the wrong size");
  }
  state.SetItemsProcessed(state.iterations() * kPages);
  state.SetBytesProcessed(state.iterations() * int64_t(stream.size()));
}
BENCHMARK(BM_ReceiverPath)
    ->ArgNames({"dup_every", "zstd"})
    ->Args({0, 0})
    ->Args({2, 0})
    ->Args({0, 1});

}  // namespace
}  // namespace gangmig

int main(int argc, char** argv) {
  gangmig::TuneAllocator();
  benchmark::AddCustomContext("record_cipher", gangmig::wire::RecordCipher::Implementation());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
