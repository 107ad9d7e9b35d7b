// QMP over a non-blocking unix socket.
//
// QEMU sends one JSON object per line ("\r\n"): first a greeting {"QMP": {...}}, then,
// after we send {"execute": "qmp_capabilities"}, replies {"return": ...} or
// {"error": {"class", "desc"}} to our commands, interleaved with events
// {"event", "data", "timestamp"} that may arrive at any time. Reads can end mid-line, so
// bytes go through a LineBuffer and only complete lines are parsed.
//
// Every command carries an "id" that QEMU echoes in its reply. A command that timed out
// may still be answered later; that stale reply is recognised by its id and dropped, so
// the next command never mistakes it for its own. Once the reply to a command is in,
// any complete lines already read behind it can only be events: they are queued at once,
// so a caller that polls fd() misses none of them (their bytes are no longer on the fd).
//
// Waiting uses poll() against a deadline on the monotonic clock; a peer that closed or
// reset the socket marks the client closed and every later call fails fast.
#include "qmp/qmp_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "base/clock.h"

namespace gangmig::qmp {
namespace {

using nlohmann::json;

constexpr size_t kMaxPendingBytes = 64 << 20;  // a line longer than this is garbage
constexpr int kConnectRetryMs = 20;
constexpr char kTimedOut[] = "timed out";

std::string ErrnoText(const char* what) { return std::string(what) + ": " + strerror(errno); }

// Milliseconds until `deadline_us`, rounded up, never negative.
int RemainingMs(int64_t deadline_us) {
  int64_t left = deadline_us - MonotonicMicros();
  return left <= 0 ? 0 : int((left + 999) / 1000);
}

std::string Truncated(const std::string& s, size_t max = 200) {
  return s.size() <= max ? s : s.substr(0, max) + "...";
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t IntMember(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string StringMember(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// "GenericError: desc" from an {"error": {...}} reply.
std::string ErrorText(const json& error) {
  std::string cls = StringMember(error, "class");
  std::string desc = StringMember(error, "desc");
  if (cls.empty() && desc.empty()) return "error reply " + Truncated(Dump(error));
  return cls + ": " + desc;
}

// Opens a non-blocking socket and connects it to `path` once. Returns the fd, or -1 with
// errno set. Non-blocking, so a listener whose backlog is full fails with EAGAIN instead
// of blocking us.
int ConnectOnce(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

bool IsRetryableConnectError(int err) {
  return err == ENOENT || err == ECONNREFUSED || err == EAGAIN || err == EINTR;
}

bool IsBlank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

Result<json> ParseLine(const std::string& line) {
  json m = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object()) {
    return Status::Error("malformed line from QEMU: " + Truncated(line));
  }
  return m;
}

}  // namespace

void LineBuffer::Append(std::string_view bytes) {
  if (start_ > 0 && start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<std::string> LineBuffer::NextLine() {
  size_t nl = buffer_.find('\n', start_);
  if (nl == std::string::npos) {
    buffer_.erase(0, start_);  // keep only the partial line
    start_ = 0;
    return std::nullopt;
  }
  size_t end = (nl > start_ && buffer_[nl - 1] == '\r') ? nl - 1 : nl;
  std::string line = buffer_.substr(start_, end - start_);
  start_ = nl + 1;
  return line;
}

Result<std::unique_ptr<Client>> Client::Connect(const std::string& socket_path, int timeout_ms) {
  const std::string prefix = "qmp " + socket_path + ": ";
  if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::Error(prefix + "socket path empty or longer than " +
                         std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  const int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  int fd;
  while ((fd = ConnectOnce(socket_path)) < 0) {
    if (!IsRetryableConnectError(errno) || MonotonicMicros() >= deadline) {
      return Status::Error(prefix + ErrnoText("connect") + " (gave up after " +
                           std::to_string(timeout_ms) + " ms)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kConnectRetryMs));
  }
  std::unique_ptr<Client> client(new Client(fd, socket_path));
  GANGMIG_RETURN_IF_ERROR(client->ReadGreeting(deadline));
  auto caps =
      client->Execute("qmp_capabilities", json::object(), std::max(RemainingMs(deadline), 100));
  if (!caps.ok()) return caps.status();
  return client;
}

Client::~Client() { close(fd_); }

// A monitor's output is per socket, not per connection: a reply QEMU owed a client that
// gave up on it (QEMU blocked, say, while writing its last migration round) goes to
// whoever connects next, before or after the greeting. Such replies (they carry an id)
// and events are skipped; anything else is not a QMP monitor.
Status Client::ReadGreeting(int64_t deadline_us) {
  for (int skipped = 0;; ++skipped) {
    auto greeting = ReadMessage(deadline_us);
    if (!greeting.ok()) {
      return Error("greeting: " + greeting.status().message() +
                   " (a QMP monitor serves one client at a time; is another connected?)");
    }
    if (greeting->contains("QMP")) return Status::Ok();
    bool stale = greeting->contains("event") ||
                 (greeting->contains("id") && (greeting->contains("return") || greeting->contains("error")));
    if (!stale || skipped >= 64)
      return Error("greeting: expected {\"QMP\": ...}, got " + Truncated(Dump(*greeting)));
  }
}

Result<json> Client::Execute(const std::string& command, const json& args, int timeout_ms) {
  const std::string context = command + ": ";
  last_timed_out_ = false;
  if (!args.is_object()) return Error(context + "arguments must be a JSON object");
  if (closed_) return Error(context + "connection closed by QEMU");
  const int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  // Ids are unique across every client of this process: a reply QEMU still owed an
  // earlier connection to the same monitor can never pass for this one's.
  static std::atomic<int64_t> next_id{1};
  const int64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  json request = {{"execute", command}, {"id", id}};
  if (!args.empty()) request["arguments"] = args;
  Status sent = SendLine(Dump(request) + "\r\n", deadline);
  if (!sent.ok()) {
    last_timed_out_ = !closed_;  // nothing of it sent: QEMU is not reading its monitor
    return Error(context + sent.message());
  }
  while (true) {
    auto message = ReadMessage(deadline);
    if (!message.ok()) {
      std::string why = message.status().message();
      if (why == kTimedOut) {
        last_timed_out_ = true;
        why = "no reply within " + std::to_string(timeout_ms) + " ms";
      }
      return Error(context + why);
    }
    const json& m = *message;
    if (m.contains("event")) {
      QueueEvent(m);
      continue;
    }
    if (m.contains("id") && IntMember(m, "id") != id) continue;  // stale: an old timeout
    QueueBufferedEvents();
    if (m.contains("return")) return m["return"];
    if (m.contains("error")) return Error(context + ErrorText(m["error"]));
    return Error(context + "reply without return or error: " + Truncated(Dump(m)));
  }
}

Status Client::PollEvents() {
  Status status = closed_ ? Status::Ok() : ReadAvailable();
  QueueBufferedEvents();
  if (status.ok()) status = std::exchange(pending_error_, Status::Ok());
  if (status.ok() && closed_) status = Status::Error("connection closed by QEMU");
  return status.ok() ? status : Error(status.message());
}

std::vector<Event> Client::TakeEvents() {
  std::vector<Event> taken;
  taken.swap(events_);
  return taken;
}

Status Client::SendLine(const std::string& line, int64_t deadline_us) {
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += size_t(n);
    } else if (errno == EAGAIN || errno == EINTR) {
      if (RemainingMs(deadline_us) == 0) {
        closed_ = done > 0;  // half a command on the wire: nothing after it would parse
        return Status::Error("timed out sending");
      }
      pollfd p{fd_, POLLOUT, 0};
      poll(&p, 1, RemainingMs(deadline_us));
    } else {
      closed_ = true;
      return Status::Error(errno == EPIPE || errno == ECONNRESET ? "connection closed by QEMU"
                                                                 : ErrnoText("send"));
    }
  }
  return Status::Ok();
}

// Returns the next JSON object from QEMU, waiting until `deadline_us`. Errors carry no
// "qmp <path>" prefix; callers add it with their own context.
Result<json> Client::ReadMessage(int64_t deadline_us) {
  while (true) {
    while (auto line = lines_.NextLine()) {
      if (!IsBlank(*line)) return ParseLine(*line);
    }
    if (closed_) return Status::Error("connection closed by QEMU");
    int wait_ms = RemainingMs(deadline_us);
    if (wait_ms == 0) return Status::Error(kTimedOut);
    pollfd p{fd_, POLLIN, 0};
    int ready = poll(&p, 1, wait_ms);
    if (ready < 0 && errno != EINTR) return Status::Error(ErrnoText("poll"));
    if (ready > 0) GANGMIG_RETURN_IF_ERROR(ReadAvailable());
  }
}

// Moves every byte the socket has now into lines_. A peer close sets closed_ but is not
// an error here: the lines read before it are still good.
Status Client::ReadAvailable() {
  char buf[65536];
  while (true) {
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n > 0) {
      lines_.Append(std::string_view(buf, size_t(n)));
      if (lines_.pending_bytes() > kMaxPendingBytes) {
        closed_ = true;
        return Status::Error("line longer than " + std::to_string(kMaxPendingBytes) + " bytes");
      }
    } else if (n == 0 || errno == ECONNRESET) {
      closed_ = true;
      return Status::Ok();
    } else if (errno == EAGAIN) {
      return Status::Ok();
    } else if (errno != EINTR) {
      closed_ = true;
      return Status::Error(ErrnoText("read"));
    }
  }
}

// Parses every complete line already read. Only events are expected here; stale replies
// are dropped and a malformed line is kept in pending_error_ for the next PollEvents().
void Client::QueueBufferedEvents() {
  while (auto line = lines_.NextLine()) {
    if (IsBlank(*line)) continue;
    auto m = ParseLine(*line);
    if (!m.ok()) {
      if (pending_error_.ok()) pending_error_ = m.status();
    } else if (m->contains("event")) {
      QueueEvent(*m);
    }
  }
}

void Client::QueueEvent(const json& message) {
  Event event;
  event.name = StringMember(message, "event");
  auto data = message.find("data");
  event.data = data != message.end() ? *data : json();
  auto ts = message.find("timestamp");
  event.timestamp_us = ts == message.end()
                           ? 0
                           : IntMember(*ts, "seconds") * 1000000 + IntMember(*ts, "microseconds");
  events_.push_back(std::move(event));
}

Status Client::Error(const std::string& what) const {
  return Status::Error("qmp " + path_ + ": " + what);
}

}  // namespace gangmig::qmp
