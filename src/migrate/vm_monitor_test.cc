#include "migrate/vm_monitor.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/clock.h"
#include "net/socket.h"

namespace gangmig::migrate {
namespace {

using nlohmann::json;

// A QMP monitor on a unix socket that answers every command (query-status: running,
// query-migrate: active), and stops answering while `mute` is set (as QEMU does while it
// writes its last round with its big lock held); closes the connection once `hang_up` is
// set.
class MutableMonitor {
 public:
  MutableMonitor() {
    char tmpl[] = "/tmp/gangmig-vmmon-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/m.qmp";
    auto l = net::Listen({.kind = net::Address::Kind::kUnix, .path = path_, .host = "", .port = 0});
    if (!l.ok()) std::abort();  // the test cannot run without its socket
    listener_ = std::move(l).value();
    thread_ = std::thread([this] { Serve(); });
  }
  ~MutableMonitor() {
    hang_up = true;
    thread_.join();
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  std::atomic<bool> mute{false};
  std::atomic<bool> hang_up{false};

 private:
  void Serve() {
    net::Fd conn;
    while (!hang_up && !conn.valid()) {
      auto c = net::Accept(listener_.get());
      if (!c.ok()) return;
      conn = std::move(c).value();
      if (!conn.valid()) usleep(2000);
    }
    if (!conn.valid()) return;
    int fd = conn.get();
    Send(fd, R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})");
    std::string in;
    std::vector<json> owed;
    while (!hang_up) {
      char buf[512];
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0) break;
      if (n > 0) in.append(buf, size_t(n));
      for (size_t nl; (nl = in.find('\n')) != std::string::npos; in.erase(0, nl + 1))
        owed.push_back(json::parse(in.substr(0, nl)));
      if (!mute) {
        for (const json& cmd : owed) {
          json reply = {{"id", cmd["id"]}, {"return", json::object()}};
          if (cmd["execute"] == "query-status") reply["return"] = {{"status", "running"}};
          if (cmd["execute"] == "query-migrate") reply["return"] = {{"status", "active"}};
          Send(fd, reply.dump());
        }
        owed.clear();
      }
      usleep(2000);
    }
  }
  static void Send(int fd, const std::string& line) {
    std::string s = line + "\r\n";
    (void)!write(fd, s.data(), s.size());
  }
  std::string dir_, path_;
  net::Fd listener_;
  std::thread thread_;
};

// Waits up to `ms` for `pred(snapshot)`.
template <typename Pred>
bool WaitFor(VmMonitor& m, int ms, Pred pred) {
  for (int i = 0; i < ms / 5; ++i) {
    if (pred(m.Snapshot())) return true;
    usleep(5000);
  }
  return pred(m.Snapshot());
}

// A monitor that stops answering is noted, not lost: the connection is kept and polling
// goes on, and once QEMU answers again the note is cleared. Only a closed connection is
// lost. (The sender would otherwise give up on a source that is writing its last round.)
TEST(VmMonitorTest, UnansweredQueriesAreNotALostConnection) {
  MutableMonitor qemu;
  auto client = qmp::Client::Connect(qemu.path(), 2000);
  ASSERT_TRUE(client.ok()) << client.status().message();
  VmMonitor monitor(std::move(client).value(), 10, 100);
  ASSERT_TRUE(WaitFor(monitor, 2000, [](const VmSnapshot& s) { return s.polls >= 2; }));
  EXPECT_EQ(monitor.Snapshot().migration_status, "active");

  qemu.mute = true;
  int64_t muted = MonotonicMicros();
  ASSERT_TRUE(WaitFor(monitor, 2000,
                      [](const VmSnapshot& s) { return s.qmp_unanswered_since_us != 0; }));
  usleep(400000);  // several more rounds go unanswered
  VmSnapshot s = monitor.Snapshot();
  EXPECT_FALSE(s.qmp_lost);
  EXPECT_GE(s.qmp_unanswered_since_us, muted);
  EXPECT_EQ(s.qmp_error, "qmp " + qemu.path() + ": query-status: no reply within 100 ms");

  qemu.mute = false;
  uint64_t polls = s.polls;
  ASSERT_TRUE(WaitFor(monitor, 2000, [&](const VmSnapshot& x) { return x.polls > polls + 1; }));
  s = monitor.Snapshot();
  EXPECT_EQ(s.qmp_unanswered_since_us, 0);
  EXPECT_FALSE(s.qmp_lost);

  qemu.hang_up = true;
  ASSERT_TRUE(WaitFor(monitor, 2000, [](const VmSnapshot& x) { return x.qmp_lost; }));
  EXPECT_NE(monitor.Snapshot().qmp_error.find("connection closed by QEMU"), std::string::npos)
      << monitor.Snapshot().qmp_error;
}

}  // namespace
}  // namespace gangmig::migrate
