// Delta vs zstd with a dictionary: what a page re-sent in a later pre-copy round costs on
// the link and in CPU, encoded the way the sender does it (encode::EncodeDelta, the
// XBZRLE-like runs) and the way zstd would do it given the earlier version as a prefix.
//
// Both routes get pairs (base, page): the version of a guest page the receiver already
// holds and the new version of the same page.
//   xbzrle      the sender's route: a DELTA of at most max_delta (2048) bytes, else the
//               whole page.
//   zstd-dict-L one zstd frame per page at level L with the base as prefix
//               (ZSTD_CCtx_refPrefix; magicless, no content size: the frame would say it
//               is a 4 KiB page), else the whole page when the frame is not smaller.
// Either route's output then travels as gangmig's frames do: gathered into record
// bodies of ~256 KiB, each body compressed with zstd -1 and kept when smaller
// (encode::FrameCompressor). Bytes and CPU include that body zstd; frame_bytes_per_page
// is what a route wrote before it. Frame headers (page ids, lengths) are left out of
// both: they would be the same.
//
// The pairs come from three sets:
//   captures  pages found at the same location (RAM block, page) more than once with
//             different contents in the real QEMU streams of testdata/captures.tar.xz
//             (tiny guests, a few pre-copy rounds each);
//   workload  real captured pages overwritten the way the busy test guest re-dirties a
//             page (guest/workload.c): the whole page refilled with fresh xorshift
//             output (its shared pages are refilled with the same content, a REF, so
//             they make no pair);
//   sparse    synthetic, not seen in a guest: real captured pages with 1 to 64 scattered
//             8-byte words overwritten (2^(i%7) words), the regime a delta is made for;
//   dense     the same with 128, 256 or 512 words: deltas past the 2048-byte limit, yet
//             pages that still share much with their base.
//
// Run: build/gangmig_bench --benchmark_filter=Delta --benchmark_repetitions=3
// Counters: bytes_per_page (on the link, after the body zstd), frame_bytes_per_page
// (before it), whole_page_pct, pages/s; xbzrle/encode adds nodelta_bytes_per_page (the
// new pages sent whole, as with --delta off).
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_c_format / ZSTD_d_format: magicless frames
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "encode/delta.h"
#include "encode/zstd_codec.h"
#include "qemu_stream/stream_parser.h"
#include "wire/record.h"

#ifndef GANGMIG_CAPTURES_DIR
#define GANGMIG_CAPTURES_DIR "testdata/captures"
#endif

namespace gangmig {
namespace {

constexpr size_t kPage = encode::kDeltaPageSize;
constexpr size_t kMaxDelta = 2048;                  // core::SourceOptions::max_delta
constexpr size_t kBody = wire::kDefaultTargetBody;  // the sender's record bodies
constexpr int kBodyLevel = 1;                       // encode::CompressionOptions::level
constexpr size_t kMaxSyntheticPairs = 4096;

struct PagePair {
  Bytes base, page;
};

struct PairSet {
  std::string name, label;
  std::vector<PagePair> pairs;
};

// ---- Pairs from the captures ----

// Remembers the last contents of every located page of one stream; a page seen again
// with other contents makes a pair.
class PairCollector : public qemu_stream::StreamSink {
 public:
  PairCollector(std::vector<PagePair>* pairs, std::set<Bytes>* pages)
      : pairs_(pairs), pages_(pages) {}
  void OnLiteral(ByteView) override {}
  void OnPage(ByteView page, const qemu_stream::PageLocation& where) override {
    pages_->insert(Bytes(page.begin(), page.end()));
    if (where.block == qemu_stream::PageLocation::kUnlocated) return;
    auto [it, fresh] = last_.try_emplace({where.block, where.page});
    if (!fresh) {
      if (std::equal(page.begin(), page.end(), it->second.begin()))
        ++unchanged_;
      else
        pairs_->push_back({it->second, Bytes(page.begin(), page.end())});
    }
    it->second.assign(page.begin(), page.end());
  }
  uint64_t unchanged() const { return unchanged_; }

 private:
  std::vector<PagePair>* pairs_;
  std::set<Bytes>* pages_;
  std::map<std::pair<uint32_t, uint64_t>, Bytes> last_;
  uint64_t unchanged_ = 0;
};

std::string CapturesDir() {
  const char* env = getenv("GANGMIG_CAPTURES_DIR");
  return env && *env ? env : GANGMIG_CAPTURES_DIR;
}

// Every stream file of the captures (the source->destination direction).
std::vector<std::string> CaptureFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string();
    if (it->is_regular_file() && p.ends_with(".bin") && !p.ends_with(".rev.bin"))
      files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// ---- Pairs made from captured pages ----

// guest/workload.c's page generator: xorshift64* from a 64-bit key.
Bytes FillPage(uint64_t key) {
  Bytes page(kPage);
  uint64_t x = key ? key : 0x2545f4914f6cdd1dull;
  for (size_t i = 0; i < kPage; i += 8) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    uint64_t v = x * 0x2545f4914f6cdd1dull;
    memcpy(&page[i], &v, 8);
  }
  return page;
}

std::vector<PagePair> WorkloadPairs(const std::vector<Bytes>& real) {
  std::vector<PagePair> pairs;
  std::mt19937_64 rng(9);
  for (size_t i = 0; i < real.size() && i < kMaxSyntheticPairs; ++i)
    pairs.push_back({real[i], FillPage(rng())});
  return pairs;
}

// Real pages with 2^e scattered 8-byte words overwritten, e cycling over [lo, hi].
std::vector<PagePair> OverwrittenPairs(const std::vector<Bytes>& real, int lo, int hi) {
  std::vector<PagePair> pairs;
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < real.size() && i < kMaxSyntheticPairs; ++i) {
    Bytes page = real[i];
    size_t words = size_t{1} << (lo + int(i % size_t(hi - lo + 1)));
    for (size_t k = 0; k < words; ++k) {
      uint64_t v = rng();
      memcpy(&page[(rng() % (kPage / 8)) * 8], &v, 8);
    }
    if (page != real[i]) pairs.push_back({real[i], std::move(page)});
  }
  return pairs;
}

// The sets, built once.
const std::vector<PairSet>& Sets() {
  static const std::vector<PairSet> sets = [] {
    std::vector<PagePair> captured;
    std::set<Bytes> pages;
    uint64_t unchanged = 0;
    std::vector<std::string> files = CaptureFiles(CapturesDir());
    for (const std::string& f : files) {
      std::ifstream in(f, std::ios::binary);
      Bytes stream((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      PairCollector sink(&captured, &pages);
      qemu_stream::StreamParser parser(&sink);
      parser.Feed(stream);
      parser.Finish();
      unchanged += sink.unchanged();
    }
    // Real pages as bases, in a fixed pseudo-random order (std::set orders by bytes).
    std::vector<Bytes> real(pages.begin(), pages.end());
    std::shuffle(real.begin(), real.end(), std::mt19937_64(5));
    std::vector<PairSet> s(4);
    s[0] = {"captures",
            std::to_string(captured.size()) + " changed re-sends (" + std::to_string(unchanged) +
                " unchanged) in " + std::to_string(files.size()) + " capture streams, " +
                std::to_string(real.size()) + " distinct pages",
            std::move(captured)};
    s[1] = {"workload", "captured pages refilled as guest/workload.c does", WorkloadPairs(real)};
    s[2] = {"sparse", "captured pages, 1-64 scattered words overwritten (synthetic)",
            OverwrittenPairs(real, 0, 6)};
    s[3] = {"dense", "captured pages, 128-512 scattered words overwritten (synthetic)",
            OverwrittenPairs(real, 7, 9)};
    return s;
  }();
  return sets;
}

// ---- Record bodies: what both routes' frames travel in ----

// Gathers items (DELTA payloads, whole pages, zstd frames) into bodies of ~kBody bytes
// and compresses each with zstd at kBodyLevel, kept when smaller, as the sender's
// encode::FrameCompressor does with every record body.
class BodyPacker {
 public:
  BodyPacker() : out_(encode::ZstdCompressor::Bound(kBody + kPage)) {}

  void Clear() { bodies_.clear(), items_.clear(), body_.clear(), link_ = item_bytes_ = 0; }
  void Add(ByteView item) {
    body_.insert(body_.end(), item.begin(), item.end());
    items_.push_back(uint16_t(item.size()));
    item_bytes_ += item.size();
    if (body_.size() >= kBody) Seal();
  }
  void Seal() {
    if (body_.empty()) return;
    size_t n = zstd_.Compress(body_, kBodyLevel, out_.data(), out_.size());
    if (n < body_.size())
      bodies_.push_back({Bytes(out_.begin(), out_.begin() + n), body_.size()});
    else
      bodies_.push_back({body_, 0});
    link_ += bodies_.back().bytes.size();
    body_.clear();
  }
  // Calls fn(index, item) for every item, in order, decompressing the bodies.
  template <typename Fn>
  bool Unpack(Fn&& fn) {
    size_t item = 0;
    for (const Body& b : bodies_) {
      ByteView raw = b.bytes;
      if (b.raw_len) {
        if (!unzstd_.Decompress(b.bytes, b.raw_len, &raw_).ok()) return false;
        raw = raw_;
      }
      for (size_t at = 0; at < raw.size(); at += items_[item++])
        if (!fn(item, raw.subspan(at, items_[item]))) return false;
    }
    return item == items_.size();
  }

  uint64_t link_bytes() const { return link_; }        // bodies as they would go on the link
  uint64_t item_bytes() const { return item_bytes_; }  // before the body zstd

 private:
  struct Body {
    Bytes bytes;
    size_t raw_len;  // 0: sent raw
  };
  encode::ZstdCompressor zstd_;
  encode::ZstdDecompressor unzstd_{kBody + kPage};
  Bytes body_, out_, raw_;
  std::vector<Body> bodies_;
  std::vector<uint16_t> items_;  // lengths, as the frame headers would carry them
  uint64_t link_ = 0, item_bytes_ = 0;
};

// ---- The sender's route: a DELTA of at most kMaxDelta bytes, else the whole page ----

class XbzrleRoute {
 public:
  // Encodes every pair; returns the bytes that would go on the link.
  uint64_t Encode(const std::vector<PagePair>& pairs) {
    packer_.Clear();
    whole_pages_ = 0;
    for (const PagePair& p : pairs) {
      delta_.clear();
      if (encode::EncodeDelta(p.base, p.page, kMaxDelta, &delta_) > 0) {
        packer_.Add(delta_);
      } else {
        packer_.Add(p.page);
        ++whole_pages_;
      }
    }
    packer_.Seal();
    return packer_.link_bytes();
  }

  // Rebuilds every page from what Encode left into *out (room for pairs.size() pages).
  bool Decode(const std::vector<PagePair>& pairs, uint8_t* out) {
    return packer_.Unpack([&](size_t i, ByteView item) {
      uint8_t* page = out + i * kPage;
      if (item.size() == kPage) {
        memcpy(page, item.data(), kPage);
        return true;
      }
      return encode::ApplyDelta(pairs[i].base, item, page).ok();
    });
  }

  const BodyPacker& packer() const { return packer_; }
  uint64_t whole_pages() const { return whole_pages_; }

 private:
  BodyPacker packer_;
  Bytes delta_;
  uint64_t whole_pages_ = 0;
};

// ---- zstd with the base as prefix: one frame per page, else the whole page ----

class DictRoute {
 public:
  explicit DictRoute(int level)
      : cctx_(ZSTD_createCCtx()), dctx_(ZSTD_createDCtx()), frame_(kPage) {
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_format, ZSTD_f_zstd1_magicless);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0);
    ZSTD_DCtx_setParameter(dctx_, ZSTD_d_format, ZSTD_f_zstd1_magicless);
  }
  ~DictRoute() {
    ZSTD_freeCCtx(cctx_);
    ZSTD_freeDCtx(dctx_);
  }

  uint64_t Encode(const std::vector<PagePair>& pairs) {
    packer_.Clear();
    whole_pages_ = 0;
    for (const PagePair& p : pairs) {
      ZSTD_CCtx_reset(cctx_, ZSTD_reset_session_only);
      ZSTD_CCtx_refPrefix(cctx_, p.base.data(), kPage);  // for this frame only
      size_t n = ZSTD_compress2(cctx_, frame_.data(), kPage - 1, p.page.data(), kPage);
      if (ZSTD_isError(n)) {  // not smaller than the page: "Destination buffer is too small"
        packer_.Add(p.page);
        ++whole_pages_;
      } else {
        packer_.Add(ByteView(frame_.data(), n));
      }
    }
    packer_.Seal();
    return packer_.link_bytes();
  }

  bool Decode(const std::vector<PagePair>& pairs, uint8_t* out) {
    return packer_.Unpack([&](size_t i, ByteView item) {
      uint8_t* page = out + i * kPage;
      if (item.size() == kPage) {
        memcpy(page, item.data(), kPage);
        return true;
      }
      ZSTD_DCtx_refPrefix(dctx_, pairs[i].base.data(), kPage);
      size_t n = ZSTD_decompressDCtx(dctx_, page, kPage, item.data(), item.size());
      return !ZSTD_isError(n) && n == kPage;
    });
  }

  const BodyPacker& packer() const { return packer_; }
  uint64_t whole_pages() const { return whole_pages_; }

 private:
  ZSTD_CCtx* cctx_;
  ZSTD_DCtx* dctx_;
  BodyPacker packer_;
  Bytes frame_;
  uint64_t whole_pages_ = 0;
};

// ---- Benchmarks ----

void Rate(benchmark::State& state, size_t pairs) {
  state.counters["pages/s"] =
      benchmark::Counter(double(state.iterations()) * double(pairs), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(int64_t(state.iterations() * pairs * kPage));
}

// Counters every route reports: link bytes per page (after the body zstd), frame bytes
// per page (before it), whole pages sent (percent).
template <typename Route>
void Common(benchmark::State& state, const PairSet& set, const Route& route) {
  double n = double(set.pairs.size());
  state.counters["pairs"] = n;
  state.counters["bytes_per_page"] = double(route.packer().link_bytes()) / n;
  state.counters["frame_bytes_per_page"] = double(route.packer().item_bytes()) / n;
  state.counters["whole_page_pct"] = 100.0 * double(route.whole_pages()) / n;
  state.SetLabel(set.label);
}

template <typename Route>
void Encode(benchmark::State& state, const PairSet& set, Route& route) {
  for (auto _ : state) benchmark::DoNotOptimize(route.Encode(set.pairs));
  Rate(state, set.pairs.size());
  Common(state, set, route);
}

template <typename Route>
void Decode(benchmark::State& state, const PairSet& set, Route& route) {
  route.Encode(set.pairs);
  Bytes decoded(set.pairs.size() * kPage);
  for (auto _ : state) {
    if (!route.Decode(set.pairs, decoded.data())) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::ClobberMemory();
  }
  for (size_t i = 0; i < set.pairs.size(); ++i)
    if (memcmp(&decoded[i * kPage], set.pairs[i].page.data(), kPage) != 0)
      return state.SkipWithError("decoded other pages than were encoded");
  Rate(state, set.pairs.size());
  Common(state, set, route);
}

void XbzrleEncode(benchmark::State& state, const PairSet& set) {
  XbzrleRoute route;
  Encode(state, set, route);
  // What --delta off would send: every new page whole, in the same bodies.
  BodyPacker whole;
  for (const PagePair& p : set.pairs) whole.Add(p.page);
  whole.Seal();
  state.counters["nodelta_bytes_per_page"] = double(whole.link_bytes()) / set.pairs.size();
}

void XbzrleDecode(benchmark::State& state, const PairSet& set) {
  XbzrleRoute route;
  Decode(state, set, route);
}

void DictEncode(benchmark::State& state, const PairSet& set, int level) {
  DictRoute route(level);
  Encode(state, set, route);
}

void DictDecode(benchmark::State& state, const PairSet& set, int level) {
  DictRoute route(level);
  Decode(state, set, route);
}

// Names: Delta/<route>/<encode|decode>/<set>, e.g. Delta/zstd-dict-3/decode/captures.
[[maybe_unused]] const bool kRegistered = [] {
  for (size_t i = 0; i < 4; ++i) {
    auto set = [i]() -> const PairSet& { return Sets()[i]; };
    const char* name[] = {"captures", "workload", "sparse", "dense"};
    auto reg = [&](const std::string& what, auto fn) {
      benchmark::RegisterBenchmark(("Delta/" + what + "/" + name[i]).c_str(),
                                   [fn, set](benchmark::State& st) {
                                     if (set().pairs.empty())
                                       st.SkipWithError("no pairs (captures not unpacked?)");
                                     else
                                       fn(st, set());
                                   })
          ->Unit(benchmark::kMicrosecond);
    };
    reg("xbzrle/encode", XbzrleEncode);
    reg("xbzrle/decode", XbzrleDecode);
    for (int level : {1, 3}) {
      std::string route = "zstd-dict-" + std::to_string(level);
      reg(route + "/encode",
          [level](benchmark::State& st, const PairSet& s) { DictEncode(st, s, level); });
      reg(route + "/decode",
          [level](benchmark::State& st, const PairSet& s) { DictDecode(st, s, level); });
    }
  }
  return true;
}();

}  // namespace
}  // namespace gangmig
