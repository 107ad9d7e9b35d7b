// The sender's last stage before the link. Record bodies from wire::RecordWriter are
// compressed on a worker pool (when the compression policy says so) and sealed in the
// order they were written, so the link carries exactly the records one thread would
// have made, only sooner. Owned and called by the sender's data thread.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "base/ordered_work.h"
#include "encode/frame_compressor.h"
#include "net/socket.h"
#include "wire/record.h"

namespace gangmig::migrate {

class SealPipeline : public wire::BodySink {
 public:
  // `sealer` and `out` must outlive the pipeline; so must `compressor` unless null (no
  // compression: bodies are sealed as they are). threads 0: compress on the caller's
  // thread, at TakeBody. REQUIRES: 0 <= threads <= OrderedWork::kMaxThreads
  SealPipeline(wire::RecordSealer* sealer, encode::FrameCompressor* compressor, int threads,
               net::OutQueue* out);
  ~SealPipeline() override;

  void TakeBody(Bytes record) override;
  Bytes SpareBody() override;
  // Seals the finished bodies, oldest first, onto the output queue; `wait`: waits for
  // all of them (nothing is left in the pipeline after).
  void Collect(bool wait);

  // Body bytes handed over and not yet on the output queue.
  size_t pending_bytes() const { return pending_bytes_; }
  size_t pending_bodies() const { return work_.queued(); }
  // Polls readable when a body finished compressing; Collect() rearms it.
  int wake_fd() const { return work_.wake_fd(); }

 private:
  struct Body;

  wire::RecordSealer* sealer_;
  encode::FrameCompressor* compressor_;
  net::OutQueue* out_;
  OrderedWork work_;
  size_t pending_bytes_ = 0;
  std::vector<Bytes> spares_;  // emptied buffers of compressed bodies, for reuse
};

}  // namespace gangmig::migrate
