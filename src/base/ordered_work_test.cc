#include "base/ordered_work.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <vector>

namespace gangmig {
namespace {

struct Sleepy : OrderedWork::Task {
  Sleepy(int id, int sleep_us) : id(id), sleep_us(sleep_us) {}
  void Run() override {
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    ran = true;
    worker = std::this_thread::get_id();
  }
  int id;
  int sleep_us;
  bool ran = false;
  std::thread::id worker;
};

std::vector<int> DrainIds(OrderedWork* work) {
  std::vector<int> ids;
  while (auto t = work->PopDone(/*wait=*/true)) {
    auto* s = static_cast<Sleepy*>(t.get());
    ids.push_back(s->id);
  }
  return ids;
}

TEST(OrderedWork, ResultsComeBackInSubmissionOrderWhateverFinishesFirst) {
  OrderedWork work(4);
  std::vector<int> want;
  for (int i = 0; i < 40; ++i) {
    // Early tasks are the slow ones, so later ones finish first.
    work.Submit(std::make_unique<Sleepy>(i, i < 4 ? 20000 : 100));
    want.push_back(i);
  }
  EXPECT_EQ(DrainIds(&work), want);
  EXPECT_EQ(work.queued(), 0u);
}

TEST(OrderedWork, UnfinishedFrontHoldsBackFinishedTasksBehindIt) {
  OrderedWork work(2);
  work.Submit(std::make_unique<Sleepy>(0, 200000));
  work.Submit(std::make_unique<Sleepy>(1, 0), /*run=*/false);
  EXPECT_EQ(work.PopDone(), nullptr);  // task 0 still sleeping
  EXPECT_EQ(DrainIds(&work), (std::vector<int>{0, 1}));
}

TEST(OrderedWork, TaskNotToRunIsNeverRun) {
  OrderedWork work(2);
  work.Submit(std::make_unique<Sleepy>(7, 0), /*run=*/false);
  auto t = work.PopDone();
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(static_cast<Sleepy*>(t.get())->ran);
}

TEST(OrderedWork, ZeroThreadsRunsOnTheOwnerAtSubmit) {
  OrderedWork work(0);
  work.Submit(std::make_unique<Sleepy>(1, 0));
  auto t = work.PopDone();
  ASSERT_NE(t, nullptr);
  auto* s = static_cast<Sleepy*>(t.get());
  EXPECT_TRUE(s->ran);
  EXPECT_EQ(s->worker, std::this_thread::get_id());
}

TEST(OrderedWork, WorkersRunOffTheOwnerThreadAndWakeItsPoll) {
  OrderedWork work(2);
  work.Submit(std::make_unique<Sleepy>(1, 1000));
  pollfd p{work.wake_fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  work.Rearm();
  auto t = work.PopDone();
  ASSERT_NE(t, nullptr);
  EXPECT_NE(static_cast<Sleepy*>(t.get())->worker, std::this_thread::get_id());
  p.revents = 0;
  EXPECT_EQ(poll(&p, 1, 0), 0);  // rearmed: nothing new finished
}

TEST(OrderedWork, TaskSubmittedAgainRunsAgainAndWaitsItsTurn) {
  OrderedWork work(2);
  work.Submit(std::make_unique<Sleepy>(1, 0));
  auto t = work.PopDone(/*wait=*/true);
  ASSERT_NE(t, nullptr);
  auto* s = static_cast<Sleepy*>(t.get());
  s->ran = false;
  s->sleep_us = 100000;
  work.Submit(std::move(t));
  // Not done just because it was done before: PopDone must wait for the second run.
  t = work.PopDone(/*wait=*/true);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(static_cast<Sleepy*>(t.get())->ran);
}

TEST(OrderedWork, DestroyingWithQueuedTasksDropsThemUnrun) {
  auto work = std::make_unique<OrderedWork>(1);
  for (int i = 0; i < 100; ++i) work->Submit(std::make_unique<Sleepy>(i, 1000));
  work.reset();  // must not run the 99 waiting tasks first (ctest's timeout would catch a hang)
}

}  // namespace
}  // namespace gangmig
