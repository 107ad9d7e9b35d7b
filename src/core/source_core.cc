// How the source core names a page on the wire. Every page the parser finds is looked
// up in the session's PageIndex, which proves equality (docs/DESIGN.md) before it
// returns an existing id:
//   - content already sent (by any VM, in any round)     -> REF id
//   - new content, and the receiver holds an earlier version of the same guest page that
//     differs in few bytes                               -> DELTA base_id + changed runs
//   - new content otherwise                              -> PAGE (the 4 KiB)
// PAGE and DELTA both give the new content the next id, on both ends, so ids stay dense
// and in wire order. The "earlier version" is the id last sent for the page's location
// (RAM block, page number), one uint32 per guest page, and its bytes come from the
// index's verification copies; a delta is only ever computed against those exact bytes,
// so a stale or wrong location costs compression, never correctness.
#include "core/source_core.h"

#include <algorithm>
#include <cassert>

#include "encode/delta.h"

#define XXH_INLINE_ALL  // header-only, as in index/page_index.cc
#include <xxhash.h>

#include "wire/wire_format.h"
#include "wire/frame.h"

namespace gangmig::core {
namespace {
constexpr uint32_t kNone = UINT32_MAX;
constexpr uint64_t kMaxTrackedPage = uint64_t{1} << 26;  // 256 GiB per RAM block
}  // namespace

struct SourceCore::Vm {
  SourceVmStats stats;
  std::vector<std::unique_ptr<ChannelEncoder>> channels;
  std::unique_ptr<qemu_stream::StreamParser> parser;  // channel 0
  std::vector<std::vector<uint32_t>> last;            // [block][page] -> last id sent
};

class SourceCore::ChannelEncoder : public qemu_stream::StreamSink {
 public:
  ChannelEncoder(SourceCore* core, Vm* vm, uint16_t vm_id, uint8_t ch)
      : core_(core), vm_(vm), vm_id_(vm_id), ch_(ch) {}

  void OnLiteral(ByteView bytes) override { PutBytes(&literal_, bytes); }
  void OnPage(ByteView page, const qemu_stream::PageLocation& where) override;
  // Emits the held page, then held literal bytes as DATA frames (at most kMaxDataLen
  // each). `input` is the caller's bytes being fed (empty outside Feed): a page that
  // lies inside them may be held until the next frame or the end of Feed.
  void FlushLiteral();
  void SetInput(ByteView input) { input_ = input; }

 private:
  struct HeldPage {
    ByteView page;  // empty: none held
    qemu_stream::PageLocation where;
    index::FastHash key;
  };

  void FlushPage();
  void Encode(ByteView page, const qemu_stream::PageLocation& where, const index::FastHash& key);
  uint32_t* LastSlot(const qemu_stream::PageLocation& where);
  bool SendDelta(ByteView page, uint32_t base);

  SourceCore* core_;
  Vm* vm_;
  uint16_t vm_id_;
  uint8_t ch_;
  Bytes literal_;
  Bytes delta_;  // scratch
  ByteView input_;
  HeldPage held_;
};

// Pages are encoded one behind: the page that arrives is hashed (which starts loading its
// slot of the index) and held while the page before it is encoded, so that cache miss
// overlaps useful work instead of stalling. Only a page inside the fed bytes is held
// (the parser's own buffer may change before it calls again); frames keep their order
// because whatever emits a frame first emits the held page.
void SourceCore::ChannelEncoder::OnPage(ByteView page, const qemu_stream::PageLocation& where) {
  index::FastHash key = core_->index_.KeyOf(page);
  FlushLiteral();
  if (!input_.empty() && page.data() >= input_.data() &&
      page.data() + page.size() <= input_.data() + input_.size()) {
    held_ = {page, where, key};
    return;
  }
  Encode(page, where, key);
}

void SourceCore::ChannelEncoder::FlushPage() {
  if (held_.page.empty()) return;
  HeldPage h = held_;
  held_.page = ByteView();
  Encode(h.page, h.where, h.key);
}

void SourceCore::ChannelEncoder::Encode(ByteView page, const qemu_stream::PageLocation& where,
                                        const index::FastHash& key) {
  Bytes* out = core_->frames_;
  auto look = core_->index_.FindOrInsert(page, key);
  uint32_t* last = core_->options_.delta ? LastSlot(where) : nullptr;
  if (!look.inserted) {
    wire::AppendRef(out, vm_id_, ch_, look.id);
    ++vm_->stats.pages_referenced;
  } else if (last == nullptr || *last == kNone || !SendDelta(page, *last)) {
    if (core_->SendCref(vm_id_, ch_, page)) {
      ++vm_->stats.pages_cached;
    } else {
      wire::AppendPage(out, vm_id_, ch_, page);
      ++vm_->stats.pages_sent;
    }
  }
  if (last != nullptr) *last = look.id;
  if (look.inserted && core_->options_.on_new_content) core_->options_.on_new_content(page);
}

bool SourceCore::ChannelEncoder::SendDelta(ByteView page, uint32_t base) {
  ByteView base_bytes = core_->index_.CopyOf(base);
  if (base_bytes.empty()) return false;  // past the copy budget: no bytes to diff against
  delta_.clear();
  size_t n = encode::EncodeDelta(base_bytes, page, core_->options_.max_delta, &delta_);
  if (n == 0) return false;
  wire::AppendDelta(core_->frames_, vm_id_, ch_, base, delta_);
  ++vm_->stats.pages_delta;
  vm_->stats.delta_bytes += n;
  return true;
}

uint32_t* SourceCore::ChannelEncoder::LastSlot(const qemu_stream::PageLocation& where) {
  if (where.block == qemu_stream::PageLocation::kUnlocated || where.page >= kMaxTrackedPage)
    return nullptr;
  auto& blocks = vm_->last;
  if (where.block >= blocks.size()) blocks.resize(where.block + 1);
  auto& pages = blocks[where.block];
  if (where.page >= pages.size()) {
    size_t grown =
        std::max<size_t>(where.page + 1, std::min<size_t>(2 * pages.size(), kMaxTrackedPage));
    pages.resize(grown, kNone);
  }
  return &pages[where.page];
}

void SourceCore::ChannelEncoder::FlushLiteral() {
  FlushPage();
  for (size_t at = 0; at < literal_.size(); at += wire::kMaxDataLen) {
    size_t n = std::min(wire::kMaxDataLen, literal_.size() - at);
    wire::AppendData(core_->frames_, vm_id_, ch_, ByteView(literal_.data() + at, n));
  }
  literal_.clear();
}

bool SourceCore::SendCref(uint16_t vm, uint8_t ch, ByteView page) {
  if (!options_.dest_cache || summary_.empty() || unacked_.size() >= options_.max_unacked_crefs)
    return false;
  if (!summary_.MayContain(XXH3_64bits(page.data(), page.size()))) return false;
  index::Digest key = fingerprinter_.Of(page);
  wire::AppendCref(frames_, vm, ch, ByteView(key.bytes.data(), key.bytes.size()));
  unacked_.emplace_back(next_cref_++, Bytes(page.begin(), page.end()));
  return true;
}

Status SourceCore::OnSummary(ByteView p) {
  if (p.size() < wire::kSummaryFieldsSize + 1) return Status::Error("SUMMARY too short");
  uint8_t k = p[0], log2 = p[1];
  uint32_t offset = LoadBE32(p.data() + 2);
  if (summary_.empty() || summary_.probes() != k || summary_.log2_bits() != log2) {
    auto fresh = index::PageSummary::OfShape(k, log2);
    if (!fresh.ok()) return fresh.status();
    summary_ = std::move(fresh).value();
    summary_bytes_ = 0;
  }
  ByteView bits = p.subspan(wire::kSummaryFieldsSize);
  GANGMIG_RETURN_IF_ERROR(summary_.Merge(offset, bits));
  summary_bytes_ += bits.size();
  return Status::Ok();
}

ByteView SourceCore::KeptCref(uint32_t cref) const {
  if (unacked_.empty() || cref < unacked_.front().first) return ByteView();
  size_t at = cref - unacked_.front().first;  // numbers are consecutive
  return at < unacked_.size() ? ByteView(unacked_[at].second) : ByteView();
}

Status SourceCore::OnNeed(uint32_t cref) {
  ByteView content = KeptCref(cref);
  if (!content.empty()) {
    wire::AppendFill(frames_, cref, content);
    ++fills_;
    return Status::Ok();
  }
  return Status::Error("the receiver asked for CREF " + std::to_string(cref) +
                       ", which was never sent or was already acknowledged");
}


void SourceCore::OnCacheAck(uint32_t crefs) {
  while (!unacked_.empty() && unacked_.front().first < crefs) unacked_.pop_front();
}

SourceCore::SourceCore(const SourceOptions& options, Bytes* frames)
    : options_(options), frames_(frames), index_(options.index) {}

SourceCore::~SourceCore() = default;

void SourceCore::OpenChannel(uint16_t vm, uint8_t ch) {
  if (vm >= vms_.size()) vms_.resize(vm + 1);
  if (!vms_[vm]) vms_[vm] = std::make_unique<Vm>();
  Vm& v = *vms_[vm];
  assert(ch == v.channels.size());
  v.channels.push_back(std::make_unique<ChannelEncoder>(this, &v, vm, ch));
  if (ch == 0) {
    v.parser = std::make_unique<qemu_stream::StreamParser>(v.channels[0].get());
  } else {
    size_t before = frames_->size();
    wire::AppendChannelOpen(frames_, vm, ch);
    v.stats.frame_bytes += frames_->size() - before;
  }
}

void SourceCore::Feed(uint16_t vm, uint8_t ch, ByteView bytes) {
  Vm& v = *vms_[vm];
  size_t before = frames_->size();
  ChannelEncoder& enc = *v.channels[ch];
  if (ch == 0) {
    enc.SetInput(bytes);
    v.parser->Feed(bytes);
  } else {
    enc.OnLiteral(bytes);
    v.stats.extra_channel_bytes += bytes.size();
  }
  enc.FlushLiteral();
  enc.SetInput(ByteView());
  v.stats.frame_bytes += frames_->size() - before;
}

void SourceCore::Close(uint16_t vm, uint8_t ch) {
  Vm& v = *vms_[vm];
  size_t before = frames_->size();
  if (ch == 0) v.parser->Finish();
  v.channels[ch]->FlushLiteral();
  wire::AppendChannelEof(frames_, vm, ch);
  v.stats.frame_bytes += frames_->size() - before;
}

const SourceVmStats& SourceCore::stats(uint16_t vm) const { return vms_[vm]->stats; }

const qemu_stream::StreamParser& SourceCore::parser(uint16_t vm) const { return *vms_[vm]->parser; }

}  // namespace gangmig::core
