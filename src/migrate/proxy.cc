#include "migrate/proxy.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "base/clock.h"
#include "migrate/dest_map.h"
#include "migrate/join_queue.h"
#include "migrate/source_control.h"
#include "migrate/timeouts.h"
#include "wire/control.h"

namespace gangmig::migrate {
namespace {

void Log(const std::string& line) { fprintf(stderr, "gangmig proxy: %s\n", line.c_str()); }

// One gang session to one peer, on a thread of its own.
struct Session {
  std::shared_ptr<JoinQueue> queue = std::make_shared<JoinQueue>();
  std::thread thread;
  std::atomic<bool> done{false};
  ~Session() {
    if (thread.joinable()) thread.join();
  }
};

std::string Mib(uint64_t bytes) {
  char b[32];
  snprintf(b, sizeof(b), "%.1f MiB", double(bytes) / (1 << 20));
  return b;
}

// What a finished session did, a line per VM and one for the session.
void LogSession(const std::string& peer, const Report& r, const Status& st) {
  uint64_t stream = 0;
  for (const VmReport& v : r.vms) {
    stream += v.stream_bytes;
    if (v.status == "completed") {
      char line[256];
      snprintf(line, sizeof(line), "peer %s: vm %s: completed in %.2f s, downtime %.0f ms (%s)",
               peer.c_str(), v.name.c_str(), v.end_to_end_s(), v.downtime_ms(),
               v.downtime_end().c_str());
      Log(line);
    } else {
      Log("peer " + peer + ": vm " + v.name + ": FAILED: " + v.error);
    }
  }
  std::string line = "peer " + peer + ": session of " + std::to_string(r.vms.size()) +
                     " VMs ended: " + Mib(r.link_tx_bytes) + " sent for " + Mib(stream) +
                     " of streams";
  if (!st.ok() && !r.error.empty()) line += "; " + r.error;
  Log(line);
}

std::string ReportPath(const std::string& dir, const std::string& peer) {
  static std::atomic<int> n{0};
  char stamp[32];
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  return dir + "/" + peer + "-" + stamp + "-" + std::to_string(n++) + ".json";
}

void RunSession(const ProxyOptions* o, const ProxyPeer* peer, Session* s) {
  SenderOptions so = o->session;
  so.receiver = peer->receiver;
  so.vms.clear();
  so.joins = s->queue.get();
  so.progress = false;
  Report report;
  Status st = RunGangMigration(so, &report);
  LogSession(peer->name, report, st);
  if (!o->report_dir.empty()) {
    std::string path = ReportPath(o->report_dir, peer->name);
    std::ofstream out(path);
    out << report.ToJson().dump(2) << "\n";
    if (!out) Log("cannot write the report " + path);
  }
  s->done = true;
}

class Proxy {
 public:
  explicit Proxy(const ProxyOptions& o) : opt_(o) {}
  Status Run();

 private:
  Status MakeDirs();
  void Discover();
  void SyncListeners();
  void Deliver(size_t peer, const std::string& name, net::Fd fd);
  void Reap();
  void SetAccess(const std::string& path, mode_t mode);

  const ProxyOptions& opt_;
  gid_t gid_ = gid_t(-1);
  std::set<std::string> names_;
  std::string discover_error_;
  std::map<std::pair<size_t, std::string>, net::Fd> listeners_;
  std::vector<std::unique_ptr<Session>> current_;   // per peer (null: none open)
  std::vector<std::unique_ptr<Session>> finishing_;  // queue closed, thread finishing
};

void Proxy::SetAccess(const std::string& path, mode_t mode) {
  if (gid_ != gid_t(-1) && chown(path.c_str(), uid_t(-1), gid_) != 0)
    Log("cannot give " + path + " to group " + opt_.socket_group + ": " + strerror(errno));
  chmod(path.c_str(), gid_ != gid_t(-1) ? mode : (mode & 0700));
}

Status Proxy::MakeDirs() {
  if (!opt_.socket_group.empty()) {
    struct group* g = getgrnam(opt_.socket_group.c_str());
    if (!g)
      return Status::Error("--socket-group " + opt_.socket_group +
                           ": no such group (libvirt's QEMU user's group is libvirt-qemu "
                           "on Debian; --socket-group '' keeps the sockets root's alone)");
    gid_ = g->gr_gid;
  }
  if (mkdir(opt_.socket_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::Error("cannot create " + opt_.socket_dir + ": " + strerror(errno));
  for (const ProxyPeer& p : opt_.peers) {
    std::string dir = opt_.socket_dir + "/" + p.name;
    if (mkdir(dir.c_str(), 0770) != 0 && errno != EEXIST)
      return Status::Error("cannot create " + dir + ": " + strerror(errno));
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Status::Error(dir + " is not a directory");
    SetAccess(dir, 0770);
  }
  return Status::Ok();
}

// The names to serve: those given, and every running domain of --discover's libvirt.
// A libvirt that does not answer keeps the last list (said once per new error).
void Proxy::Discover() {
  std::set<std::string> names(opt_.names.begin(), opt_.names.end());
  if (!opt_.discover_uri.empty()) {
    auto r = RunCommand({"virsh", "-q", "-c", opt_.discover_uri, "list", "--name"}, timeouts::kQmpMs);
    if (!r.ok() || r->exit_status != 0) {
      std::string why = r.ok() ? r->output : r.status().message();
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      if (why != discover_error_) Log("cannot list the domains of " + opt_.discover_uri + ": " + why);
      discover_error_ = why;
      return;
    }
    discover_error_.clear();
    std::istringstream in(r->output);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (!wire::ValidVmName(line)) {
        if (names_.insert("!" + line).second)
          Log("domain '" + line + "' has a name gangmig cannot carry ([A-Za-z0-9._-], at "
              "most 64): not served");
        continue;
      }
      names.insert(line);
    }
  }
  // Each domain's disk copy (NBD; `virsh migrate --copy-storage-all --disks-uri
  // unix://DIR/PEER/DOMAIN.disks.sock`) has a socket of its own.
  std::set<std::string> with_disks = names;
  for (const std::string& n : names)
    if (wire::ValidVmName(n + ".disks")) with_disks.insert(n + ".disks");
  for (const std::string& n : names_)
    if (!n.empty() && n[0] == '!') with_disks.insert(n);  // remembered: said once
  names_ = std::move(with_disks);
}

// One listening socket per (peer, name); sockets of names gone are removed. Sessions
// keep the connections they were handed, so removing a socket never cuts a stream.
void Proxy::SyncListeners() {
  for (size_t p = 0; p < opt_.peers.size(); ++p) {
    for (const std::string& name : names_) {
      if (name[0] == '!' || listeners_.count({p, name})) continue;
      std::string path = opt_.socket_dir + "/" + opt_.peers[p].name + "/" + name + ".sock";
      std::string what = NotASocket(path);
      if (!what.empty() && what != "does not exist") {
        Log(path + " " + what + ": not served");
        listeners_[{p, name}] = net::Fd();
        continue;
      }
      if (what.empty() && net::UnixSocketInUse(path)) {  // gangmig migrate --libvirt?
        Log(path + " is in use by another process: not served");
        listeners_[{p, name}] = net::Fd();
        continue;
      }
      auto l = net::Listen(net::Address{net::Address::Kind::kUnix, path, "", 0}, 64);
      if (!l.ok()) {
        Log("cannot listen on " + path + ": " + l.status().message());
        continue;
      }
      SetAccess(path, 0660);
      listeners_[{p, name}] = std::move(l).value();
    }
  }
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (names_.count(it->first.second)) {
      ++it;
      continue;
    }
    if (it->second.valid())
      unlink((opt_.socket_dir + "/" + opt_.peers[it->first.first].name + "/" + it->first.second +
              ".sock").c_str());
    it = listeners_.erase(it);
  }
}

// Hands a new stream to the peer's open session, or opens one.
void Proxy::Deliver(size_t peer, const std::string& name, net::Fd fd) {
  if (current_[peer] && current_[peer]->queue->Push(name, fd)) return;
  if (current_[peer]) finishing_.push_back(std::move(current_[peer]));
  auto s = std::make_unique<Session>();
  s->queue->Push(name, fd);
  Log("peer " + opt_.peers[peer].name + ": vm " + name + " connected: new session to " +
      opt_.peers[peer].receiver);
  s->thread = std::thread(RunSession, &opt_, &opt_.peers[peer], s.get());
  current_[peer] = std::move(s);
}

void Proxy::Reap() {
  for (auto it = finishing_.begin(); it != finishing_.end();)
    it = (*it)->done ? finishing_.erase(it) : it + 1;
  for (auto& s : current_)
    if (s && s->done) s.reset();
}

Status Proxy::Run() {
  GANGMIG_RETURN_IF_ERROR(MakeDirs());
  current_.resize(opt_.peers.size());
  Discover();
  SyncListeners();
  size_t serving = 0;
  for (const auto& [k, fd] : listeners_) serving += fd.valid();
  Log("ready: " + std::to_string(serving) + " sockets under " + opt_.socket_dir + " for " +
      std::to_string(opt_.peers.size()) + " peer(s)" +
      (opt_.discover_uri.empty() ? "" : ", domains of " + opt_.discover_uri + " every " +
                                            std::to_string(opt_.discover_ms) + " ms"));
  int64_t next_discover = MonotonicMicros() + int64_t(opt_.discover_ms) * 1000;
  while (!Interrupted()) {
    std::vector<pollfd> fds;
    std::vector<std::pair<size_t, std::string>> keys;
    for (const auto& [k, fd] : listeners_) {
      if (!fd.valid()) continue;
      fds.push_back({fd.get(), POLLIN, 0});
      keys.push_back(k);
    }
    int rc = poll(fds.data(), fds.size(), 200);
    if (rc < 0 && errno != EINTR) return Status::Error(std::string("poll: ") + strerror(errno));
    for (size_t i = 0; rc > 0 && i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (;;) {
        auto c = net::Accept(fds[i].fd);
        if (!c.ok() || !c->valid()) break;
        Deliver(keys[i].first, keys[i].second, std::move(c).value());
      }
    }
    Reap();
    if (!opt_.discover_uri.empty() && MonotonicMicros() >= next_discover) {
      Discover();
      SyncListeners();
      next_discover = MonotonicMicros() + int64_t(opt_.discover_ms) * 1000;
    }
  }
  Log("stopping: sessions under way are failed, their sources keep their VMs");
  for (auto& [k, fd] : listeners_)
    if (fd.valid())
      unlink((opt_.socket_dir + "/" + opt_.peers[k.first].name + "/" + k.second + ".sock").c_str());
  listeners_.clear();
  current_.clear();  // joins each session's thread, which sees the interrupt
  finishing_.clear();
  return Status::Ok();
}

}  // namespace

Status RunProxy(const ProxyOptions& options) {
  InstallInterruptHandler();
  Proxy p(options);
  return p.Run();
}

}  // namespace gangmig::migrate
