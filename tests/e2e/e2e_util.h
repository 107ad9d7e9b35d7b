// Helpers for the end-to-end scenarios: run the real gangmig binary as a child process
// (with a deadline, output to a file), read its JSON report, pick free ports.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace gangmig::e2e {

// A child process started from argv, stdout+stderr to `log`.
struct Child {
  pid_t pid = -1;
  std::string log;
};

Child Spawn(const std::vector<std::string>& argv, const std::string& log);
// Waits up to timeout_ms; returns the exit code, or -1 after killing it (SIGKILL) on timeout.
int Wait(Child& c, int timeout_ms);
// True while the child runs (reaps it if it ended).
bool Running(Child& c);
std::string ReadFile(const std::string& path);
nlohmann::json ReadJson(const std::string& path);
// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// Waits until `needle` appears in the file (e.g. a receiver's "listening" line).
bool WaitForText(const std::string& path, const std::string& needle, int timeout_ms);

// A TCP relay on 127.0.0.1 between a sender and a receiver: it forwards every byte of
// each connection both ways until Stall(); from then on it forwards nothing, but keeps
// every socket open -- a link that drops packets, not one that closes.
class StallingRelay {
 public:
  explicit StallingRelay(int to_port);
  ~StallingRelay();  // closes every socket and joins its threads
  int port() const { return port_; }
  void Stall() { stalled_ = true; }
  uint64_t forwarded() const { return forwarded_; }

 private:
  void Accept();
  void Pump(int from, int to);

  int to_port_, port_ = 0, listen_fd_ = -1;
  std::atomic<bool> stalled_{false}, closing_{false};
  std::atomic<uint64_t> forwarded_{0};
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace gangmig::e2e
