// The receiver's front door: it listens, runs each connection's handshake on a thread of
// its own (one deadline for the whole exchange, capped in number in all and per address),
// and hands every authenticated connection to its session (receive_session.h), so that
// neither a slow stranger nor a running session keeps it from serving anyone else.
#include "migrate/receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <list>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "migrate/receive_session.h"
#include "migrate/timeouts.h"
#include "net/socket.h"
#include "wire/handshake.h"

namespace gangmig::migrate {
namespace {

// The handshake of one accepted connection, within one deadline for the whole exchange
// (a peer that trickles bytes cannot stretch it).
Status Handshake(int fd, const ReceiverOptions& o, wire::SessionKeys* keys, uint16_t* features) {
  const int64_t deadline = MonotonicMicros() + int64_t(timeouts::kHandshakeMs) * 1000;
  auto left_ms = [deadline] {
    return int(std::max<int64_t>(1, (deadline - MonotonicMicros()) / 1000));
  };
  // The page cache is offered only by a receiver that has one.
  uint16_t offered =
      o.cache_dir.empty() ? uint16_t(o.features & ~wire::kFeatureCache) : o.features;
  wire::ServerHandshake hs(o.key, offered);
  Bytes hello(wire::kClientHelloSize);
  GANGMIG_RETURN_IF_ERROR(net::ReadFull(fd, hello.data(), wire::kHelloHeaderSize, left_ms()));
  Status header = wire::CheckHelloHeader(hello);
  if (!header.ok()) {
    // A sender of another version is told ours (and can name both), then refused.
    if (wire::IsOtherVersion(hello)) (void)net::WriteFull(fd, wire::VersionHeader(), left_ms());
    return header;
  }
  GANGMIG_RETURN_IF_ERROR(net::ReadFull(fd, hello.data() + wire::kHelloHeaderSize,
                                        hello.size() - wire::kHelloHeaderSize, left_ms()));
  auto reply = hs.OnClientHello(hello);
  if (!reply.ok()) return reply.status();
  GANGMIG_RETURN_IF_ERROR(net::WriteFull(fd, *reply, left_ms()));
  Bytes proof(wire::kClientProofSize);
  GANGMIG_RETURN_IF_ERROR(net::ReadFull(fd, proof.data(), proof.size(), left_ms()));
  GANGMIG_RETURN_IF_ERROR(hs.OnClientProof(proof));
  *keys = hs.keys();
  *features = hs.agreed();
  return Status::Ok();
}

// Refusals are logged with the peer's address, at most one line per second (the others
// are counted and reported with the next line), so a flood cannot fill the log.
class RefusalLog {
 public:
  void Note(const std::string& peer, const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = MonotonicMicros();
    if (now - last_us_ < 1000000) {
      ++suppressed_;
      return;
    }
    std::string more =
        suppressed_ ? " (" + std::to_string(suppressed_) + " more refused since the last line)"
                    : "";
    fprintf(stderr, "gangmig receive: refused %s: %s%s\n", peer.c_str(), why.c_str(), more.c_str());
    last_us_ = now;
    suppressed_ = 0;
  }

 private:
  std::mutex mu_;
  int64_t last_us_ = -2000000;
  uint64_t suppressed_ = 0;
};

// One accepted connection: its handshake, then (if the peer proved the key) its session,
// on a thread of its own, so that neither a slow handshake nor a running session keeps
// the receiver from serving anyone else.
struct Connection {
  std::thread thread;
  std::string peer;
  std::atomic<bool> done{false};
  std::atomic<bool> authenticated{false};
  Status status;  // written by the thread before `done`
  // The socket while the handshake runs (-1 after), so that a receiver about to exit can
  // cut a stranger's handshake short. Guarded by mu: the thread clears it before the
  // socket can be closed, so a shutdown() never hits a reused descriptor.
  std::mutex mu;
  int handshake_fd = -1;

  void Abandon() {
    std::lock_guard<std::mutex> lock(mu);
    if (handshake_fd >= 0) shutdown(handshake_fd, SHUT_RDWR);
  }
};

void ServeConnection(Connection* c, net::Fd fd, const ReceiverOptions& o, RefusalLog* refusals,
                     store::CacheDrain* drain, store::PageCache* cache) {
  wire::SessionKeys keys;
  uint16_t features = 0;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->handshake_fd = fd.get();
  }
  Status hs = Handshake(fd.get(), o, &keys, &features);
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->handshake_fd = -1;
  }
  if (!hs.ok()) {
    refusals->Note(c->peer, hs.message());
    c->status = hs;
    c->done = true;
    return;
  }
  c->authenticated = true;
  if (o.verbose)
    fprintf(stderr, "gangmig receive: session from %s, features: %s\n", c->peer.c_str(),
            wire::FeatureNames(features).c_str());
  c->status = RunReceiveSession(o, std::move(fd), keys, features, drain, cache);
  if (!c->status.ok())
    fprintf(stderr, "gangmig receive: session from %s failed: %s\n", c->peer.c_str(),
            c->status.message().c_str());
  c->done = true;
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof(host));
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof(host));
  else if (ss.ss_family == AF_UNIX)
    return "local peer";
  return host;
}

}  // namespace

// The accept loop never blocks on a peer: each connection gets its own thread for the
// handshake (one deadline for all of it) and then its session. Unauthenticated
// connections are capped in all (kMaxPendingHandshakes) and per address
// (kMaxPendingPerAddress), and refused beyond that, so idle or slow strangers cannot
// delay a real sender for longer than its retry, and several senders (two source hosts
// evacuating to one destination) are served at once.
Result<DestMap> LoadDestMap(const ReceiverOptions& options) {
  DestMap map;
  if (!options.dest_map.empty()) {
    auto loaded = DestMap::Load(options.dest_map);
    if (!loaded.ok()) return loaded.status();
    map = std::move(loaded).value();
  }
  if (!options.dest_dir.empty()) map.set_dir(options.dest_dir, options.dest_wait_ms > 0);
  if (map.empty())
    return Status::Error(
        "no destinations: pass --dest-dir DIR (VM NAME goes to DIR/NAME.sock) or --dest-map "
        "FILE (lines NAME ADDRESS [QMP-SOCKET])");
  return map;
}

std::string SpillDir(const ReceiverOptions& o) {
  if (!o.spill_dir.empty()) return o.spill_dir;
  return o.cache_dir.empty() ? "/var/tmp" : o.cache_dir;
}

Status RunReceiver(const ReceiverOptions& options) {
  auto dests = LoadDestMap(options);  // a broken map is refused before anyone connects
  if (!dests.ok()) return dests.status();
  std::unique_ptr<store::PageCache> cache;
  std::unique_ptr<store::CacheDrain> drain;  // declared after cache: stops first
  if (!options.cache_dir.empty()) {
    auto opened = store::PageCache::Open(options.cache_dir, options.cache_size);
    if (!opened.ok()) return opened.status();
    cache = std::move(opened).value();
    drain = std::make_unique<store::CacheDrain>(cache.get());
    if (options.verbose) {
      store::CacheStats s = cache->stats();
      fprintf(stderr, "gangmig receive: page cache %s: %llu pages (%llu MiB of at most %llu)\n",
              options.cache_dir.c_str(), (unsigned long long)s.entries,
              (unsigned long long)(s.bytes >> 20), (unsigned long long)(options.cache_size >> 20));
    }
  }
  auto addr = net::ParseAddress(options.listen);
  if (!addr.ok()) return addr.status();
  auto listener = net::Listen(*addr);
  if (!listener.ok()) return listener.status();
  if (options.verbose) {
    auto port = net::LocalPort(listener->get());
    fprintf(stderr, "gangmig receive: listening on %s (port %u)\n", options.listen.c_str(),
            port.ok() ? unsigned(*port) : 0u);
  }
  RefusalLog refusals;
  std::list<Connection> conns;
  for (;;) {
    // Reap finished connections; with --once, the first session that ends ends us.
    for (auto it = conns.begin(); it != conns.end();) {
      if (!it->done) {
        ++it;
        continue;
      }
      it->thread.join();
      if (options.once && it->authenticated) {
        Status st = it->status;
        for (auto& c : conns) {
          if (!c.authenticated) c.Abandon();         // strangers' handshakes end now
          if (c.thread.joinable()) c.thread.join();  // other sessions finish first
        }
        return st;
      }
      it = conns.erase(it);
    }
    pollfd p{listener->get(), POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    auto fd = net::Accept(listener->get());
    if (!fd.ok() || !fd->valid()) continue;
    std::string peer = PeerAddress(fd->get());
    size_t pending = 0, from_peer = 0;
    for (const auto& c : conns) {
      if (c.authenticated) continue;
      ++pending;
      if (c.peer == peer) ++from_peer;
    }
    if (pending >= kMaxPendingHandshakes || from_peer >= kMaxPendingPerAddress) {
      refusals.Note(peer, pending >= kMaxPendingHandshakes
                              ? "too many handshakes in progress"
                              : "too many handshakes in progress from this address");
      continue;  // fd closes here
    }
    Connection& c = conns.emplace_back();
    c.peer = peer;
    c.thread =
        std::thread(ServeConnection, &c, std::move(fd).value(), std::cref(options), &refusals,
                    drain.get(), cache.get());
  }
}

}  // namespace gangmig::migrate
