// Each body is one task: the policy (encode::FrameCompressor::ShouldTry, with the link's
// backlog as it is now) decides on the data thread whether to compress it; a body not to
// be compressed still queues behind the others so that records keep their order. A
// worker compresses with its own zstd context (thread_local: one per pool thread). When
// the oldest bodies are done, the data thread books their outcome with the policy and
// seals them: a compressed body as a new record, a raw one in place, its buffer going
// straight to the output queue without a copy. Buffers cycle: the output queue keeps
// spares of sent records and the pipeline keeps the raw buffers of compressed bodies,
// so steady state allocates nothing and touches no fresh memory.
#include "migrate/seal_pipeline.h"

#include "base/clock.h"

namespace gangmig::migrate {
namespace {
constexpr size_t kMaxSpares = 8;
}  // namespace

struct SealPipeline::Body : OrderedWork::Task {
  Bytes record;  // header room + body
  Bytes zframes;
  int level = 1;
  bool tried = false;
  bool skip_random = false;
  encode::CompressOutcome outcome = encode::CompressOutcome::kNotSmaller;  // when not tried
  double cpu_seconds = 0;

  void Run() override {
    thread_local encode::ZstdCompressor zstd;
    double t0 = ThreadCpuSeconds();
    ByteView body(record.data() + wire::kRecordHeaderSize, record.size() - wire::kRecordHeaderSize);
    outcome = encode::FrameCompressor::Compress(&zstd, level, skip_random, body, &zframes);
    cpu_seconds = ThreadCpuSeconds() - t0;
  }
};

SealPipeline::SealPipeline(wire::RecordSealer* sealer, encode::FrameCompressor* compressor,
                           int threads, net::OutQueue* out)
    : sealer_(sealer),
      compressor_(compressor),
      out_(out),
      work_(compressor != nullptr ? threads : 0) {
  if (compressor_) compressor_->SetParallelism(threads);
}

SealPipeline::~SealPipeline() = default;

void SealPipeline::TakeBody(Bytes record) {
  auto body = std::make_unique<Body>();
  size_t n = record.size() - wire::kRecordHeaderSize;
  body->record = std::move(record);
  if (!spares_.empty()) {
    body->zframes = std::move(spares_.back());
    spares_.pop_back();
  }
  bool tried = compressor_ != nullptr && compressor_->ShouldTry(n);
  body->tried = tried;
  if (compressor_) {
    body->level = compressor_->level();
    body->skip_random = compressor_->skip_random();
  }
  pending_bytes_ += n;
  work_.Submit(std::move(body), tried);
}

Bytes SealPipeline::SpareBody() {
  if (spares_.empty()) return out_->TakeSpare();
  Bytes b = std::move(spares_.back());
  spares_.pop_back();
  b.clear();
  return b;
}

void SealPipeline::Collect(bool wait) {
  work_.Rearm();
  while (auto task = work_.PopDone(wait)) {
    auto* b = static_cast<Body*>(task.get());
    size_t n = b->record.size() - wire::kRecordHeaderSize;
    pending_bytes_ -= n;
    if (b->tried)
      compressor_->Record(n, b->outcome, b->zframes.size(), b->cpu_seconds);
    if (b->outcome == encode::CompressOutcome::kCompressed) {
      Bytes sealed = out_->TakeSpare();
      sealer_->Seal(b->zframes, &sealed);
      out_->AppendOwned(std::move(sealed));
      b->record.clear();
      if (spares_.size() < kMaxSpares) spares_.push_back(std::move(b->record));
    } else {
      sealer_->SealTail(&b->record, 0);
      out_->AppendOwned(std::move(b->record));
    }
    b->zframes.clear();
    if (b->zframes.capacity() && spares_.size() < kMaxSpares)
      spares_.push_back(std::move(b->zframes));
  }
}

}  // namespace gangmig::migrate
