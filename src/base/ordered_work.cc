// Workers take tasks from one FIFO under one mutex; a task is a whole record body
// (~256 KiB, 50-500 us of work), so the lock is taken a few thousand times per second
// and is never the bottleneck. Finishing sets the task's flag under the same mutex and
// writes the eventfd, so the owner's poll loop wakes without a timeout.
#include "base/ordered_work.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

namespace gangmig {

int OrderedWork::DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return int(std::clamp(n, 1u, 8u));
}

OrderedWork::OrderedWork(int threads) {
  assert(threads >= 0 && threads <= kMaxThreads);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

OrderedWork::~OrderedWork() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    runnable_.clear();
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void OrderedWork::Submit(std::unique_ptr<Task> task, bool run) {
  Task* t = task.get();
  t->done_ = false;  // a task may come back for another round; no worker can see it yet
  order_.push_back(std::move(task));
  if (run && workers_.empty()) t->Run();
  if (!run || workers_.empty()) {
    t->done_ = true;  // no worker can see it: no lock needed
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    runnable_.push_back(t);
  }
  work_cv_.notify_one();
}

std::unique_ptr<OrderedWork::Task> OrderedWork::PopDone(bool wait) {
  if (order_.empty()) return nullptr;
  Task* front = order_.front().get();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (wait) done_cv_.wait(lock, [front] { return front->done_; });
    if (!front->done_) return nullptr;
  }
  std::unique_ptr<Task> t = std::move(order_.front());
  order_.pop_front();
  return t;
}

// Without workers nothing ever writes the eventfd, so there is nothing to drain (and
// the read, a system call per loop turn, is skipped: ~5 us each in a VM).
void OrderedWork::Rearm() {
  if (workers_.empty()) return;
  uint64_t v;
  while (read(wake_fd_, &v, sizeof(v)) == sizeof(v)) {
  }
}

void OrderedWork::Work() {
  for (;;) {
    Task* t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || !runnable_.empty(); });
      if (stop_) return;
      t = runnable_.front();
      runnable_.pop_front();
    }
    t->Run();
    {
      std::lock_guard<std::mutex> lock(mu_);
      t->done_ = true;
    }
    done_cv_.notify_all();
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

}  // namespace gangmig
