// gangmig proxy as an operator starts it, through the real binary, without libvirt or
// QEMU: usage errors say what is missing; the daemon makes one socket per peer and name
// with the requested modes, refuses to take over a socket another process serves, keeps
// serving, and on SIGTERM removes its sockets and exits 0. (With real libvirt and QEMU:
// LibvirtE2E.Proxy*.)
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "e2e_util.h"
#include "net/socket.h"

namespace gangmig::e2e {
namespace {

class ProxyCliE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gangmig-proxycli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_ = dir_ + "/key";
    Child k = Spawn({GANGMIG_BINARY, "keygen", key_}, dir_ + "/keygen.log");
    ASSERT_EQ(Wait(k, 10000), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> Argv(std::vector<std::string> more) {
    std::vector<std::string> argv = {GANGMIG_BINARY, "proxy"};
    argv.insert(argv.end(), more.begin(), more.end());
    return argv;
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
  }
  std::string dir_, key_;
};

TEST_F(ProxyCliE2E, UsageErrorsSayWhatIsMissing) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"--key-file", key_}, "at least one --peer NAME=HOST:PORT is required"},
      {{"--peer", "b=127.0.0.1:1"}, "--key-file FILE is required"},
      {{"--peer", "b/../x=127.0.0.1:1", "--key-file", key_}, "expected NAME=HOST:PORT"},
      {{"--peer", "b=127.0.0.1:1", "--peer", "b=127.0.0.1:2", "--key-file", key_}, "given twice"},
      {{"--peer", "b=127.0.0.1:1", "--key-file", key_, "--discover", "none"},
       "--discover none needs --vm NAME"},
      {{"--peer", "b=127.0.0.1:1", "--key-file", key_, "--linger", "soon"},
       "--linger: 'soon' is not a whole number"},
      {{"--peer", "b=127.0.0.1:1", "--key-file", key_, "--vm", "a b"}, "--vm 'a b'"},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::string log = dir_ + "/usage" + std::to_string(n++) + ".log";
    Child p = Spawn(Argv(c.args), log);
    EXPECT_EQ(Wait(p, 10000), 2) << ReadFile(log);
    EXPECT_NE(ReadFile(log).find(c.says), std::string::npos) << ReadFile(log);
  }
}

TEST_F(ProxyCliE2E, ServesOneSocketPerPeerAndNameAndCleansUp) {
  std::string sockets = dir_ + "/run";
  // Someone else already serves b/busy.sock: the proxy must leave it alone.
  std::filesystem::create_directories(sockets + "/b");
  auto busy = net::Listen(net::Address{net::Address::Kind::kUnix, sockets + "/b/busy.sock", "", 0});
  ASSERT_TRUE(busy.ok());
  // b's "receiver" answers as a gangmig of another version: the session fails at once.
  auto other = net::Listen(*net::ParseAddress("127.0.0.1:0"));
  ASSERT_TRUE(other.ok());
  int port = *net::LocalPort(other->get());
  std::atomic<bool> stop{false};
  std::thread answer([&] {
    while (!stop) {
      auto c = net::Accept(other->get());
      if (c.ok() && c->valid()) (void)!write(c->get(), "GGMG\x00\x05\x00\x00", 8);
      usleep(10000);
    }
  });
  std::string log = dir_ + "/proxy.log";
  Child p = Spawn(Argv({"--peer", "b=127.0.0.1:" + std::to_string(port), "--peer", "c=127.0.0.1:2", "--key-file", key_,
                        "--discover", "none", "--vm", "vm1", "--vm", "busy", "--socket-dir", sockets,
                        "--socket-group", "", "--linger", "1"}),
                  log);
  ASSERT_TRUE(WaitForText(log, "ready:", 10000)) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("ready: 7 sockets"), std::string::npos) << ReadFile(log);
  for (const char* peer : {"b", "c"}) {
    std::string d = sockets + "/" + peer;
    EXPECT_TRUE(S_ISDIR(Mode(d))) << d;
    EXPECT_EQ(Mode(d) & 0777, 0700u) << d;  // no group given: root only
    EXPECT_TRUE(S_ISSOCK(Mode(d + "/vm1.sock"))) << d;
    EXPECT_EQ(Mode(d + "/vm1.sock") & 0777, 0600u) << d;
  }
  EXPECT_NE(ReadFile(log).find("busy.sock is in use by another process: not served"), std::string::npos)
      << ReadFile(log);
  EXPECT_TRUE(net::UnixSocketInUse(sockets + "/b/busy.sock"));  // still the other one's
  EXPECT_TRUE(S_ISSOCK(Mode(sockets + "/c/busy.sock")));        // c's was free
  // A stream whose receiver is unreachable fails alone; the daemon keeps serving.
  auto s = net::Connect(net::Address{net::Address::Kind::kUnix, sockets + "/b/vm1.sock", "", 0}, 1000);
  ASSERT_TRUE(s.ok());
  bool failed = WaitForText(log, "vm vm1: FAILED", 20000);
  stop = true;
  answer.join();
  ASSERT_TRUE(failed) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("both must speak the same version"), std::string::npos) << ReadFile(log);
  EXPECT_TRUE(Running(p)) << ReadFile(log);
  kill(p.pid, SIGTERM);
  EXPECT_EQ(Wait(p, 20000), 0) << ReadFile(log);
  EXPECT_EQ(Mode(sockets + "/b/vm1.sock"), 0u);
  EXPECT_EQ(Mode(sockets + "/c/vm1.sock"), 0u);
  EXPECT_TRUE(net::UnixSocketInUse(sockets + "/b/busy.sock"));
}

}  // namespace
}  // namespace gangmig::e2e
