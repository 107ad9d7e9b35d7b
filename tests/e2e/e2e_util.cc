#include "e2e_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace gangmig::e2e {

Child Spawn(const std::vector<std::string>& argv, const std::string& log) {
  Child c;
  c.log = log;
  c.pid = fork();
  if (c.pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return c;
}

int Wait(Child& c, int timeout_ms) {
  if (c.pid <= 0) return -1;
  for (int i = 0; i < timeout_ms / 20; ++i) {
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(20000);
  }
  kill(c.pid, SIGKILL);
  waitpid(c.pid, nullptr, 0);
  c.pid = -1;
  return -1;
}

bool Running(Child& c) {
  if (c.pid <= 0) return false;
  if (waitpid(c.pid, nullptr, WNOHANG) == c.pid) {
    c.pid = -1;
    return false;
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json ReadJson(const std::string& path) {
  return nlohmann::json::parse(ReadFile(path), nullptr, false);
}

int FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

bool WaitForText(const std::string& path, const std::string& needle, int timeout_ms) {
  for (int i = 0; i < timeout_ms / 20; ++i) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    usleep(20000);
  }
  return false;
}

StallingRelay::StallingRelay(int to_port) : to_port_(to_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(listen_fd_, 8) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return;
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

StallingRelay::~StallingRelay() {
  closing_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
  }
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : threads_) t.join();
  for (int fd : fds_) close(fd);
  close(listen_fd_);
}

void StallingRelay::Accept() {
  for (;;) {
    int in = accept(listen_fd_, nullptr, nullptr);
    if (in < 0 || closing_) {
      if (in >= 0) close(in);
      return;
    }
    int out = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(to_port_));
    if (connect(out, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(in);
      close(out);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    fds_.push_back(in);
    fds_.push_back(out);
    threads_.emplace_back([this, in, out] { Pump(in, out); });
    threads_.emplace_back([this, in, out] { Pump(out, in); });
  }
}

// One direction of one connection. Once stalled it reads nothing more, so the sender's
// and the receiver's socket buffers fill and their writes stop, as on a dead link.
void StallingRelay::Pump(int from, int to) {
  char buf[64 * 1024];
  while (!closing_) {
    if (stalled_) {
      usleep(10000);
      continue;
    }
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0) {
      shutdown(to, SHUT_WR);
      return;
    }
    if (stalled_) continue;  // read just as the link died: dropped
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(to, buf + done, size_t(n - done));
      if (w <= 0) return;
      done += w;
    }
    forwarded_ += uint64_t(n);
  }
}

}  // namespace gangmig::e2e
