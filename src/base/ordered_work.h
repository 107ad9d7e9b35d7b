// OrderedWork: a small worker pool whose results come back in the order the work was
// submitted. The data paths use it to compress (sender) or decompress (receiver) record
// bodies on several cores while the records keep their place on the one ordered link.
//
// One owner thread submits tasks and takes finished ones back with PopDone(), oldest
// first; a finished task behind an unfinished one waits for it. Workers only call
// Task::Run(). With 0 threads, Submit() runs the task at once on the owner's thread,
// so "no pool" is the same code path.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gangmig {

class OrderedWork {
 public:
  class Task {
   public:
    virtual ~Task() = default;
    // Runs on a worker (or on the owner with 0 threads). Must not touch state the owner
    // uses until the task comes back from PopDone().
    virtual void Run() = 0;

   private:
    friend class OrderedWork;
    bool done_ = false;  // guarded by OrderedWork::mu_
  };

  // REQUIRES: 0 <= threads <= kMaxThreads
  explicit OrderedWork(int threads);
  ~OrderedWork();  // waits for running tasks; tasks not yet started are dropped
  OrderedWork(const OrderedWork&) = delete;
  OrderedWork& operator=(const OrderedWork&) = delete;

  static constexpr int kMaxThreads = 64;
  // A default size from the CPU count: one worker per CPU, at most 8.
  static int DefaultThreads();

  // Queues `task` behind every task submitted before. `run` false: the task has nothing
  // to do and only keeps its place in the order. A task PopDone() returned may be
  // submitted again (to reuse its buffers).
  void Submit(std::unique_ptr<Task> task, bool run = true);
  // The oldest task if it has finished, else nullptr. `wait`: block until it has
  // (nullptr only when nothing is queued).
  std::unique_ptr<Task> PopDone(bool wait = false);

  size_t queued() const { return order_.size(); }  // submitted, not yet popped
  int threads() const { return int(workers_.size()); }
  // A descriptor that polls readable after a task finished; Rearm() after draining
  // (with 0 threads it never becomes readable and Rearm() costs nothing).
  int wake_fd() const { return wake_fd_; }
  void Rearm();

 private:
  void Work();

  std::vector<std::thread> workers_;
  std::deque<std::unique_ptr<Task>> order_;  // owner only
  std::mutex mu_;
  std::condition_variable work_cv_;  // a task to run, or stop
  std::condition_variable done_cv_;  // a task finished
  std::deque<Task*> runnable_;       // guarded by mu_
  bool stop_ = false;                // guarded by mu_
  int wake_fd_ = -1;
};

}  // namespace gangmig
