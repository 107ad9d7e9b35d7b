// The dedup codec in the middle of the pipeline, without sockets:
//   PageEncoder (sender)   parsed stream pieces -> DATA / PAGE / REF frames
//   PageResolver (receiver) PAGE / REF frames   -> page bytes, with every id checked
// Both sides number distinct page contents 0, 1, 2, ... in the order PAGE frames are
// written to (and read from) the one ordered connection, so a REF needs only the id.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"
#include "index/page_index.h"
#include "qemu_stream/stream_parser.h"
#include "wire/frame.h"

namespace gangmig::migrate {

// Session-wide sender state shared by every VM's channel encoders.
struct EncoderContext {
  explicit EncoderContext(const index::PageIndex::Options& options = {}) : index(options) {}
  Bytes* frames = nullptr;  // where frames go (the pending record body)
  index::PageIndex index;
};

struct ChannelCounters {
  uint64_t pages_sent = 0;        // PAGE frames (new content)
  uint64_t pages_referenced = 0;  // REF frames (content already sent)
};

// Turns one channel's stream into frames. Give it to a StreamParser as its sink, or
// call OnLiteral directly for a channel that is relayed verbatim.
class PageEncoder : public qemu_stream::StreamSink {
 public:
  // `ctx` and `counters` must outlive the encoder.
  PageEncoder(EncoderContext* ctx, uint16_t vm, uint8_t channel, ChannelCounters* counters)
      : ctx_(ctx), vm_(vm), channel_(channel), counters_(counters) {}

  void OnLiteral(ByteView bytes) override { PutBytes(&literal_, bytes); }
  void OnPage(ByteView page) override;
  // Emits held literal bytes as DATA frames (at most kMaxDataLen each). Call after each
  // chunk fed to the parser, so nothing waits for the next read.
  void FlushLiteral();

 private:
  EncoderContext* ctx_;
  uint16_t vm_;
  uint8_t channel_;
  ChannelCounters* counters_;
  Bytes literal_;
};

// Receiver side: keeps every page content sent in the session and resolves references.
class PageResolver {
 public:
  // For a PAGE frame: stores its content and returns it. For a REF frame: returns the
  // referenced content, or an error naming the bad id. REQUIRES: f is PAGE or REF.
  Result<ByteView> Resolve(const wire::Frame& f);
  uint32_t pages() const { return store_.size(); }
  uint64_t bytes_held() const { return store_.bytes_held(); }

 private:
  index::PageStore store_;
};

}  // namespace gangmig::migrate
