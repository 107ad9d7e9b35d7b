// Helpers for the end-to-end scenarios: run the real gangmig binary as a child process
// (with a deadline, output to a file), read its JSON report, pick free ports.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
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

}  // namespace gangmig::e2e
