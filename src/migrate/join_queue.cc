#include "migrate/join_queue.h"

#include <fcntl.h>
#include <unistd.h>

namespace gangmig::migrate {

JoinQueue::JoinQueue() {
  if (pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
}

JoinQueue::~JoinQueue() {
  for (int fd : wake_)
    if (fd >= 0) close(fd);
}

bool JoinQueue::Push(const std::string& name, net::Fd& fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return false;
  waiting_.push_back({name, std::move(fd)});
  char one = 1;
  (void)!write(wake_[1], &one, 1);
  return true;
}

std::vector<JoinedStream> JoinQueue::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  char buf[64];
  while (read(wake_[0], buf, sizeof(buf)) > 0) {
  }
  std::vector<JoinedStream> out;
  for (auto& j : waiting_) out.push_back(std::move(j));
  waiting_.clear();
  return out;
}

bool JoinQueue::CloseIfEmpty() {
  std::lock_guard<std::mutex> lock(mu_);
  if (waiting_.empty()) closed_ = true;
  return closed_;
}

std::vector<JoinedStream> JoinQueue::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  std::vector<JoinedStream> out;
  for (auto& j : waiting_) out.push_back(std::move(j));
  waiting_.clear();
  return out;
}

}  // namespace gangmig::migrate
