// Thin wrappers over BSD sockets. All sockets handed out are non-blocking; the two
// blocking helpers (ReadFull/WriteFull) poll() with a deadline and are used only for the
// handshake, before the event loop starts.
#include "net/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>

#include "base/clock.h"

namespace gangmig::net {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    Reset();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void Fd::Reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::string Address::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return "tcp:" + host + ":" + std::to_string(port);
}

Result<Address> ParseAddress(const std::string& text) {
  Address a;
  if (text.rfind("unix:", 0) == 0) {
    a.kind = Address::Kind::kUnix;
    a.path = text.substr(5);
    if (a.path.empty()) return Status::Error("address '" + text + "': empty unix path");
    if (a.path.size() >= sizeof(sockaddr_un::sun_path))
      return Status::Error("address '" + text + "': unix path too long");
    return a;
  }
  std::string rest = text.rfind("tcp:", 0) == 0 ? text.substr(4) : text;
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status::Error("address '" + text + "': expected unix:PATH or [tcp:]HOST:PORT");
  a.host = rest.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  std::string port = rest.substr(colon + 1);
  char* end = nullptr;
  long p = strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    return Status::Error("address '" + text + "': bad port '" + port + "'");
  a.port = uint16_t(p);
  return a;
}

Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return Status::Error(std::string("fcntl: ") + strerror(errno));
  return Status::Ok();
}

namespace {

Status Errno(const std::string& what, const Address& addr) {
  return Status::Error(what + " " + addr.ToString() + ": " + strerror(errno));
}

Result<sockaddr_un> UnixSockaddr(const Address& addr) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, addr.path.c_str(), addr.path.size() + 1);
  return sa;
}

// Resolves a TCP address (numeric or name) to the first usable sockaddr.
Result<sockaddr_storage> TcpSockaddr(const Address& addr, socklen_t* len) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (addr.host.empty() ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  std::string port = std::to_string(addr.port);
  int rc = getaddrinfo(addr.host.empty() ? nullptr : addr.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr)
    return Status::Error("resolve " + addr.ToString() + ": " + gai_strerror(rc));
  sockaddr_storage ss{};
  memcpy(&ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return ss;
}

Result<Fd> NewSocket(int family, const Address& addr) {
  Fd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket for", addr);
  if (family != AF_UNIX) {
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

// The socket address of `addr` (resolving a TCP host name).
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNIX;
};

Result<SockAddr> ToSockAddr(const Address& addr) {
  SockAddr sa;
  if (addr.kind == Address::Kind::kUnix) {
    auto un = UnixSockaddr(addr);
    memcpy(&sa.ss, &un.value(), sizeof(sockaddr_un));
    sa.len = sizeof(sockaddr_un);
    return sa;
  }
  auto r = TcpSockaddr(addr, &sa.len);
  if (!r.ok()) return r.status();
  sa.ss = r.value();
  sa.family = sa.ss.ss_family;
  return sa;
}

}  // namespace

Result<Fd> Listen(const Address& addr, int backlog) {
  auto sa = ToSockAddr(addr);
  if (!sa.ok()) return sa.status();
  sockaddr_storage& ss = sa->ss;
  socklen_t len = sa->len;
  if (addr.kind == Address::Kind::kUnix) unlink(addr.path.c_str());
  auto fd = NewSocket(sa->family, addr);
  if (!fd.ok()) return fd.status();
  if (bind(fd->get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) return Errno("bind", addr);
  if (listen(fd->get(), backlog) < 0) return Errno("listen on", addr);
  GANGMIG_RETURN_IF_ERROR(SetNonBlocking(fd->get()));
  return std::move(fd).value();
}

Result<Fd> Connect(const Address& addr, int timeout_ms) {
  auto sa = ToSockAddr(addr);
  if (!sa.ok()) return sa.status();
  sockaddr_storage& ss = sa->ss;
  socklen_t len = sa->len;
  auto fd = NewSocket(sa->family, addr);
  if (!fd.ok()) return fd.status();
  GANGMIG_RETURN_IF_ERROR(SetNonBlocking(fd->get()));
  if (connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return Errno("connect to", addr);
    pollfd p{fd->get(), POLLOUT, 0};
    int rc = poll(&p, 1, timeout_ms);
    if (rc == 0) return Status::Error("connect to " + addr.ToString() + ": timed out");
    int err = 0;
    socklen_t elen = sizeof(err);
    getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) {
      errno = err;
      return Errno("connect to", addr);
    }
  }
  return std::move(fd).value();
}

Result<Fd> Accept(int listen_fd) {
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Fd();
    return Status::Error(std::string("accept: ") + strerror(errno));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix
  return Fd(fd);
}

Result<uint16_t> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    return Status::Error(std::string("getsockname: ") + strerror(errno));
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return Status::Error("getsockname: not a TCP socket");
}

static Status WaitFor(int fd, short events, int64_t deadline_us, const char* what) {
  int64_t left_ms = (deadline_us - MonotonicMicros()) / 1000;
  if (left_ms <= 0) return Status::Error(std::string(what) + ": timed out");
  pollfd p{fd, events, 0};
  if (poll(&p, 1, int(left_ms)) == 0) return Status::Error(std::string(what) + ": timed out");
  return Status::Ok();
}

Status ReadFull(int fd, uint8_t* buf, size_t n, int timeout_ms) {
  int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r > 0) {
      got += size_t(r);
    } else if (r == 0) {
      return Status::Error("peer closed the connection");
    } else if (errno == EAGAIN || errno == EINTR) {
      GANGMIG_RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, "read"));
    } else {
      return Status::Error(std::string("read: ") + strerror(errno));
    }
  }
  return Status::Ok();
}

Status WriteFull(int fd, ByteView data, int timeout_ms) {
  int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t r = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (r > 0) {
      done += size_t(r);
    } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      GANGMIG_RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline, "write"));
    } else {
      return Status::Error(std::string("write: ") + strerror(errno));
    }
  }
  return Status::Ok();
}

void OutQueue::Append(ByteView b) {
  size_ += b.size();
  while (!b.empty()) {
    if (chunks_.empty() || chunks_.back().size() >= kChunk) {
      chunks_.emplace_back();
      chunks_.back().reserve(std::max(kChunk, b.size()));
    }
    Bytes& last = chunks_.back();
    size_t n = std::min(b.size(), last.capacity() - last.size());
    if (n == 0) n = b.size();
    last.insert(last.end(), b.begin(), b.begin() + long(n));
    b = b.subspan(n);
  }
}

void OutQueue::AppendOwned(Bytes&& b) {
  if (b.empty()) {
    Recycle(std::move(b));
  } else {
    size_ += b.size();
    chunks_.push_back(std::move(b));
  }
  b = Bytes();
}

Bytes OutQueue::TakeSpare() {
  if (spares_.empty()) return Bytes();
  Bytes b = std::move(spares_.back());
  spares_.pop_back();
  return b;
}

void OutQueue::Recycle(Bytes&& b) {
  if (spares_.size() >= max_spares_ || b.capacity() == 0) return;  // b is freed by its owner
  b.clear();
  spares_.push_back(std::move(b));
}

void OutQueue::DrainTo(Bytes* out) {
  for (size_t i = 0; i < chunks_.size(); ++i) {
    if (out)
      PutBytes(out, ByteView(chunks_[i].data() + (i == 0 ? head_ : 0),
                             chunks_[i].size() - (i == 0 ? head_ : 0)));
    Recycle(std::move(chunks_[i]));
  }
  chunks_.clear();
  head_ = 0;
  size_ = 0;
}

Result<size_t> OutQueue::WriteTo(int fd) {
  size_t total = 0;
  while (size_ > 0) {
    iovec iov[16];
    int n = 0;
    size_t off = head_;
    for (auto it = chunks_.begin(); it != chunks_.end() && n < 16; ++it, off = 0) {
      iov[n].iov_base = it->data() + off;
      iov[n].iov_len = it->size() - off;
      ++n;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(n);
    ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return Status::Error(strerror(errno));
    }
    total += size_t(r);
    size_ -= size_t(r);
    size_t left = size_t(r);
    while (left > 0) {
      size_t in_front = chunks_.front().size() - head_;
      if (left < in_front) {
        head_ += left;
        break;
      }
      left -= in_front;
      Recycle(std::move(chunks_.front()));
      chunks_.pop_front();
      head_ = 0;
    }
  }
  return total;
}

bool UnixSocketInUse(const std::string& path) {
  auto fd = Connect(Address{Address::Kind::kUnix, path, "", 0}, 200);
  return fd.ok();
}

}  // namespace gangmig::net
