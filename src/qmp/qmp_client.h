// QMP client: one connection to a QEMU monitor over a unix socket. It owns the socket,
// runs one command at a time and queues the asynchronous events QEMU sends in between.
// Nothing QEMU sends can abort the process: malformed lines, a closed socket and
// timeouts all come back as Status values whose text starts with "qmp <socket path>: ".
// Not thread-safe: use one Client from one thread (QEMU serves one client per monitor).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace gangmig::qmp {

// An asynchronous QMP event, e.g. STOP, RESUME, MIGRATION {"status": "completed"}.
struct Event {
  std::string name;
  nlohmann::json data;   // the event's "data" member, or null when it has none
  int64_t timestamp_us;  // QEMU's wall-clock "timestamp" {seconds, microseconds}
};

// Splits the byte stream from QEMU into lines ("\r\n" or "\n" terminated). Pure:
// bytes in, complete lines out; a partial line waits for more bytes.
class LineBuffer {
 public:
  void Append(std::string_view bytes);
  // Returns the next complete line without its terminator, or nullopt if none yet.
  std::optional<std::string> NextLine();
  size_t pending_bytes() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;  // bytes before start_ were already returned
};

class Client {
 public:
  // Connects to a QMP unix socket, reads the greeting, runs qmp_capabilities. Retries the
  // connect until timeout (the socket may not exist yet right after QEMU starts).
  static Result<std::unique_ptr<Client>> Connect(const std::string& socket_path,
                                                 int timeout_ms = 10000);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one command and waits for its reply; events that arrive meanwhile are queued.
  // Returns the reply's "return" member. Error text includes the command and QEMU's
  // error class/desc, e.g. "qmp /run/x.qmp: migrate: GenericError: ..."; a closed
  // socket or a timeout are errors too. `args` must be an object (omitted when empty).
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& args = nlohmann::json::object(),
                                 int timeout_ms = 10000);
  // For poll(): readable when events may be pending. Execute() may already have queued
  // some, so check TakeEvents() after each Execute() too.
  int fd() const { return fd_; }
  // Reads whatever is available without blocking, queues events. Error if the peer
  // closed (events received before the close are still queued).
  Status PollEvents();
  // Returns the queued events, oldest first, and clears the queue.
  std::vector<Event> TakeEvents();
  // The socket path given to Connect().
  const std::string& path() const { return path_; }
  // The connection is gone (QEMU closed it, or a command was cut off mid-line): every
  // further command fails.
  bool closed() const { return closed_; }
  // The last Execute() failed only because QEMU had not answered by its deadline; the
  // connection is still usable (a late reply is recognised and dropped).
  bool last_timed_out() const { return last_timed_out_; }

 private:
  Client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status ReadGreeting(int64_t deadline_us);
  Status SendLine(const std::string& line, int64_t deadline_us);
  Result<nlohmann::json> ReadMessage(int64_t deadline_us);
  Status ReadAvailable();
  void QueueBufferedEvents();
  void QueueEvent(const nlohmann::json& message);
  Status Error(const std::string& what) const;

  int fd_;
  std::string path_;
  LineBuffer lines_;
  std::vector<Event> events_;
  bool closed_ = false;   // the peer closed the connection (or reading it failed)
  bool last_timed_out_ = false;
  Status pending_error_;  // a malformed line seen while no caller was waiting
};

}  // namespace gangmig::qmp
