// gangmig proxy's session (SenderOptions::joins): streams that connected by themselves
// join a running gang session, a second connection under the name of a VM still under
// way becomes its extra channel (multifd), and the session ends once every VM is done
// and the linger window passed, refusing later streams. A real receiver on loopback and
// fake destination QEMUs (unix listeners in its --dest-dir) check that each stream
// arrives byte for byte and that the two VMs' identical pages crossed once.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>

#include "migrate/join_queue.h"
#include "migrate/receiver.h"
#include "migrate/sender.h"
#include "net/socket.h"

namespace gangmig::migrate {
namespace {

const Bytes kKey(32, 0x42);

Bytes ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

// A captured main stream of a real VM's migration (QEMU 7.2, pre-copy, running guest).
Bytes CapturedStream() {
  return ReadAll(std::string(GANGMIG_CAPTURES_DIR) + "/cap72-precopy-running/conn0.fwd.bin");
}

// A destination QEMU: accepts `conns` connections on `listener`, reads each to its end,
// closes it (a main channel closed after the whole stream = loaded).
std::vector<Bytes> FakeDestination(int listener, size_t conns) {
  std::vector<Bytes> got;
  std::vector<net::Fd> fds;
  std::vector<bool> open;
  size_t closed = 0;
  Bytes buf(1 << 16);
  for (int idle = 0; closed < conns && idle < 3000;) {
    std::vector<pollfd> p = {{listener, POLLIN, 0}};
    for (size_t i = 0; i < fds.size(); ++i) p.push_back({open[i] ? fds[i].get() : -1, POLLIN, 0});
    if (poll(p.data(), p.size(), 10) <= 0) {
      ++idle;
      continue;
    }
    idle = 0;
    const size_t polled = p.size() - 1;  // a connection accepted below was not polled yet
    if (p[0].revents & POLLIN) {
      auto c = net::Accept(listener);
      if (c.ok() && c->valid()) {
        fds.push_back(std::move(c).value());
        open.push_back(true);
        got.emplace_back();
      }
    }
    for (size_t i = 0; i < polled; ++i) {
      if (!open[i] || !(p[i + 1].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].get(), buf.data(), buf.size());
      if (n > 0) {
        got[i].insert(got[i].end(), buf.begin(), buf.begin() + n);
      } else if (n == 0) {
        fds[i].Reset();
        open[i] = false;
        ++closed;
      }
    }
  }
  return got;
}

// One end of a socket pair carrying `bytes` (then EOF), as a source QEMU would connect.
net::Fd SourceStream(const Bytes& bytes, std::vector<std::thread>* writers) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  net::Fd ours(sv[0]);
  int theirs = sv[1];
  writers->emplace_back([theirs, bytes] {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(theirs, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EPIPE) break;  // the sender closed it (a failed VM)
      if (n > 0) {
        off += size_t(n);
      } else {
        pollfd p{theirs, POLLOUT, 0};
        poll(&p, 1, 100);
      }
    }
    shutdown(theirs, SHUT_WR);
    char sink[4096];  // the return path, until the sender closes
    for (;;) {
      pollfd p{theirs, POLLIN, 0};
      if (poll(&p, 1, 10000) <= 0) break;
      ssize_t n = read(theirs, sink, sizeof(sink));
      if (n == 0 || (n < 0 && errno != EAGAIN)) break;
    }
    close(theirs);
  });
  return ours;
}

TEST(ProxySessionTest, JoinedStreamsShareOneSessionAndArriveByteForByte) {
  Bytes stream = CapturedStream();
  ASSERT_GT(stream.size(), 256u << 10) << "no captured stream in " << GANGMIG_CAPTURES_DIR;
  Bytes extra(300 * 1024);
  std::mt19937 rng(7);
  for (auto& b : extra) b = uint8_t(rng());

  std::string dir = "/tmp/gangmig-proxy-session-test-" + std::to_string(getpid());
  mkdir(dir.c_str(), 0700);
  auto la = net::Listen(*net::ParseAddress("unix:" + dir + "/a.sock"));
  auto lb = net::Listen(*net::ParseAddress("unix:" + dir + "/b.sock"));
  ASSERT_TRUE(la.ok() && lb.ok());
  auto dest_a = std::async(std::launch::async, FakeDestination, la->get(), 2);
  auto dest_b = std::async(std::launch::async, FakeDestination, lb->get(), 1);

  auto l = net::Listen(*net::ParseAddress("127.0.0.1:0"));
  uint16_t port = *net::LocalPort(l->get());
  l->Reset();
  ReceiverOptions ro;
  ro.listen = "127.0.0.1:" + std::to_string(port);
  ro.key = kKey;
  ro.once = true;
  ro.verbose = false;
  ro.dest_dir = dir;
  auto receiver = std::async(std::launch::async, [ro] { return RunReceiver(ro); });

  JoinQueue joins;
  std::vector<std::thread> writers;
  net::Fd first = SourceStream(stream, &writers);
  ASSERT_TRUE(joins.Push("a", first));
  net::Fd second = SourceStream(extra, &writers);  // a's second connection: its channel 1
  ASSERT_TRUE(joins.Push("a", second));
  SenderOptions so;
  so.receiver = ro.listen;
  so.key = kKey;
  so.joins = &joins;
  so.linger_ms = 2000;
  so.progress = false;
  Report report;
  auto sender = std::async(std::launch::async, [&] { return RunGangMigration(so, &report); });
  usleep(200000);  // joins the session under way (or in its linger window)
  net::Fd third = SourceStream(stream, &writers);  // another VM, the same content
  ASSERT_TRUE(joins.Push("b", third));

  ASSERT_EQ(sender.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  Status st = sender.get();
  EXPECT_TRUE(st.ok()) << st.message();
  for (auto& w : writers) w.join();
  // Closed once the session ended: a later stream is refused, so the proxy opens a new
  // session for it.
  net::Fd late = SourceStream(extra, &writers);
  EXPECT_FALSE(joins.Push("c", late));
  EXPECT_TRUE(late.valid());
  late.Reset();
  for (auto& w : writers)
    if (w.joinable()) w.join();

  std::vector<Bytes> got_a = dest_a.get(), got_b = dest_b.get();
  ASSERT_EQ(got_a.size(), 2u);
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_TRUE(got_a[0] == stream) << got_a[0].size() << " of " << stream.size();
  EXPECT_TRUE(got_a[1] == extra) << got_a[1].size() << " of " << extra.size();
  EXPECT_TRUE(got_b[0] == stream) << got_b[0].size() << " of " << stream.size();
  EXPECT_TRUE(receiver.get().ok());

  EXPECT_EQ(report.mode, "proxy");
  ASSERT_EQ(report.vms.size(), 2u);
  for (const VmReport& v : report.vms) EXPECT_EQ(v.status, "completed") << v.name << ": " << v.error;
  EXPECT_EQ(report.vms[0].name, "a");
  EXPECT_EQ(report.vms[1].name, "b");
  EXPECT_NE(report.vms[0].passthrough_reason.find("extra channels"), std::string::npos)
      << report.vms[0].passthrough_reason;
  // b's pages had all crossed for a: they go as references.
  EXPECT_GT(report.vms[1].pages_referenced, 0u);
  EXPECT_EQ(report.vms[1].pages_sent, 0u);
  EXPECT_LT(report.link_tx_bytes, stream.size() + extra.size());
  std::filesystem::remove_all(dir);
}

// A session whose receiver cannot be reached fails every stream it was handed (closing
// them, so their sources fail the migration and keep the VMs) and names each in the
// report.
TEST(ProxySessionTest, UnreachableReceiverFailsEveryWaitingStream) {
  JoinQueue joins;
  std::vector<std::thread> writers;
  Bytes some(1000, 'x');
  net::Fd s1 = SourceStream(some, &writers), s2 = SourceStream(some, &writers);
  ASSERT_TRUE(joins.Push("vm1", s1));
  ASSERT_TRUE(joins.Push("vm2", s2));
  auto l = net::Listen(*net::ParseAddress("127.0.0.1:0"));
  uint16_t port = *net::LocalPort(l->get());
  l->Reset();  // nobody listens there now
  SenderOptions so;
  so.receiver = "127.0.0.1:" + std::to_string(port);
  so.key = kKey;
  so.joins = &joins;
  so.progress = false;
  Report report;
  // A receiver that refuses at once (here: one of another version), so the connect does
  // not retry for timeouts::kReceiverConnectMs.
  auto closer = net::Listen(*net::ParseAddress(so.receiver));
  ASSERT_TRUE(closer.ok());
  std::atomic<bool> stop{false};
  std::thread refuse([&] {
    while (!stop) {
      auto c = net::Accept(closer->get());
      // A gangmig of another version answers with its header: final, no retry.
      if (c.ok() && c->valid()) (void)!write(c->get(), "GGMG\x00\x05\x00\x00", 8);
      usleep(10000);
    }
  });
  Status st = RunGangMigration(so, &report);
  stop = true;
  refuse.join();
  EXPECT_FALSE(st.ok());
  ASSERT_EQ(report.vms.size(), 2u);
  for (const VmReport& v : report.vms) {
    EXPECT_EQ(v.status, "failed") << v.name;
    EXPECT_FALSE(v.error.empty()) << v.name;
  }
  EXPECT_FALSE(joins.Push("vm3", s1));  // closed with the session
  for (auto& w : writers) w.join();     // each source saw its stream closed
}

}  // namespace
}  // namespace gangmig::migrate
