// The rolling drain from a receiver's sessions into its page cache: sessions offer each
// distinct page they received (a copy, cheap, on their data thread); one background
// thread names the pages (SHA-256) and appends them to the cache in batches. The data
// path never waits for the disk: when more than `max_queued` bytes wait, offers are
// dropped (and counted) -- the cache is an optimisation, never a dependency.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "base/bytes.h"
#include "store/page_cache.h"

namespace gangmig::store {

struct DrainStats {
  uint64_t offered = 0;
  uint64_t dropped = 0;  // the queue was full
  uint64_t written = 0;  // handed to the cache (new or already there)
};

class CacheDrain {
 public:
  // `cache` must outlive the drain.
  explicit CacheDrain(PageCache* cache, size_t max_queued = 64u << 20);
  ~CacheDrain();  // drains what is queued, then stops
  CacheDrain(const CacheDrain&) = delete;
  CacheDrain& operator=(const CacheDrain&) = delete;

  // Queues a copy of `page` (kPageSize bytes). Thread-safe.
  void Offer(ByteView page);
  // Waits until everything offered so far is in the cache (and flushed).
  void Settle();
  DrainStats stats() const;

 private:
  void Run();

  PageCache* cache_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::deque<Bytes> batches_;  // full batches first; the last one fills
  size_t queued_bytes_ = 0;
  bool busy_ = false, stop_ = false;
  DrainStats stats_;
  std::thread thread_;
};

}  // namespace gangmig::store
