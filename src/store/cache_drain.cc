#include "store/cache_drain.h"

namespace gangmig::store {
namespace {
constexpr size_t kBatchPages = 64;
}  // namespace

CacheDrain::CacheDrain(PageCache* cache, size_t max_queued)
    : cache_(cache), max_queued_(max_queued), thread_([this] { Run(); }) {}

CacheDrain::~CacheDrain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CacheDrain::Offer(ByteView page) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.offered;
  if (queued_bytes_ + page.size() > max_queued_) {
    ++stats_.dropped;
    return;
  }
  if (batches_.empty() || batches_.back().size() >= kBatchPages * kPageSize) {
    batches_.emplace_back();
    batches_.back().reserve(kBatchPages * kPageSize);
  }
  batches_.back().insert(batches_.back().end(), page.begin(), page.end());
  queued_bytes_ += page.size();
  if (batches_.size() > 1 || batches_.back().size() >= kBatchPages * kPageSize) wake_.notify_one();
}

void CacheDrain::Settle() {
  std::unique_lock<std::mutex> lock(mu_);
  wake_.notify_one();
  idle_.wait(lock, [this] { return batches_.empty() && !busy_; });
}

DrainStats CacheDrain::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// Takes the oldest batch (a partial one only when asked to settle or stop, or after a
// quiet 100 ms), names and stores its pages, flushes the cache, and waits again.
void CacheDrain::Run() {
  index::Sha256Pages fp;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    while (!batches_.empty()) {
      Bytes batch = std::move(batches_.front());
      batches_.pop_front();
      queued_bytes_ -= batch.size();
      busy_ = true;
      lock.unlock();
      for (size_t at = 0; at < batch.size(); at += kPageSize) {
        ByteView page(batch.data() + at, kPageSize);
        (void)cache_->Put(PageCache::KeyOf(&fp, page), page);  // best effort
      }
      (void)cache_->Flush();
      lock.lock();
      stats_.written += batch.size() / kPageSize;
      busy_ = false;
    }
    idle_.notify_all();
    if (stop_) return;
  }
}

}  // namespace gangmig::store
