// Sockets: addresses ("unix:PATH", "tcp:HOST:PORT", "HOST:PORT"), RAII file descriptors,
// listen/connect/accept, and a byte queue that drains into a non-blocking socket.
// Everything here is OS-facing and returns Status values with the address in the text.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace gangmig::net {

// Owns one file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

struct Address {
  enum class Kind { kUnix, kTcp } kind = Kind::kTcp;
  std::string path;  // kUnix
  std::string host;  // kTcp
  uint16_t port = 0;
  std::string ToString() const;  // "unix:PATH" or "tcp:HOST:PORT"
};

// Parses "unix:PATH", "tcp:HOST:PORT" or bare "HOST:PORT" (tcp).
Result<Address> ParseAddress(const std::string& text);

// Listening socket (non-blocking). A unix path is unlinked first.
Result<Fd> Listen(const Address& addr, int backlog = 16);
// Blocking connect with a timeout; the returned socket is non-blocking.
Result<Fd> Connect(const Address& addr, int timeout_ms);
// True when a process listens on the unix socket at `path` (a connection is accepted
// into its backlog; it is closed at once). A stale socket file answers false.
bool UnixSocketInUse(const std::string& path);
// Accepts one pending connection (non-blocking). Returns an invalid Fd if none is pending.
Result<Fd> Accept(int listen_fd);
// The port a TCP listener is bound to (for port 0 listeners).
Result<uint16_t> LocalPort(int fd);

Status SetNonBlocking(int fd);
// Reads exactly `n` bytes, waiting at most `timeout_ms` in total (handshakes only).
Status ReadFull(int fd, uint8_t* buf, size_t n, int timeout_ms);
Status WriteFull(int fd, ByteView data, int timeout_ms);

// A FIFO of bytes waiting to be written to a non-blocking fd. Bytes live in chunks of
// up to 1 MiB so that neither appending nor draining ever moves queued bytes; a drain
// writes several chunks with one writev().
//
// Spares: a queue can keep up to `n` written chunks (emptied, capacity kept) for the
// caller to fill again (TakeSpare), so that a producer handing over whole buffers
// (AppendOwned) reuses warm memory instead of allocating fresh memory for each one.
class OutQueue {
 public:
  void Append(ByteView b);
  // Queues `b` as it is (no copy); `b` is left empty. An empty `b` is kept as a spare if
  // there is room for one, else dropped.
  void AppendOwned(Bytes&& b);
  // Keep up to `n` spares (default 0: written chunks are freed).
  void KeepSpares(size_t n) { max_spares_ = n; }
  // An empty buffer: a spare with its capacity if one is kept, else a new one.
  Bytes TakeSpare();
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Writes as much as the fd (a socket) takes. Returns bytes written, or an error (peer gone).
  Result<size_t> WriteTo(int fd);
  // Empties the queue into *out (appended), as if sent; null: just empties it.
  void DrainTo(Bytes* out);

 private:
  void Recycle(Bytes&& b);

  static constexpr size_t kChunk = 1 << 20;
  std::deque<Bytes> chunks_;
  std::vector<Bytes> spares_;
  size_t max_spares_ = 0;
  size_t head_ = 0;  // bytes of chunks_.front() already written
  size_t size_ = 0;
};

}  // namespace gangmig::net
