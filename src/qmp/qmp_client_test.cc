#include "qmp/qmp_client.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "base/clock.h"

namespace gangmig::qmp {
namespace {

using nlohmann::json;

const char kGreeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
    "\"capabilities\": [\"oob\"]}}\r\n";

std::string MakeTempDir() {
  char tmpl[] = "/tmp/gangmig-qmp-XXXXXX";
  return mkdtemp(tmpl) ? tmpl : "";
}

void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += size_t(n);
  }
}

// Reads one "\n"-terminated line (blocking); empty string on EOF.
std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1) {
    line += c;
    if (c == '\n') break;
  }
  return line;
}

// The "id" of a command line we received, echoed back like QEMU does.
int64_t IdOf(const std::string& line) { return json::parse(line).value("id", int64_t(-1)); }

std::string Reply(const std::string& command_line, const std::string& body) {
  return "{" + body + ", \"id\": " + std::to_string(IdOf(command_line)) + "}\r\n";
}

// A unix-socket server that accepts one client and runs `script` on it in a thread.
class FakeServer {
 public:
  explicit FakeServer(std::function<void(int)> script) {
    dir_ = MakeTempDir();
    path_ = dir_ + "/fake.qmp";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 1);
    thread_ = std::thread([this, script] {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      script(fd);
      close(fd);
    });
  }
  ~FakeServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int listen_fd_;
  std::thread thread_;
};

// Sends the greeting and answers qmp_capabilities, in small pieces.
void Handshake(int fd) {
  std::string greeting = kGreeting;
  for (size_t i = 0; i < greeting.size(); i += 7) {
    WriteAll(fd, greeting.substr(i, 7));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string caps = ReadLine(fd);
  std::string reply = Reply(caps, "\"return\": {}");
  WriteAll(fd, reply.substr(0, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  WriteAll(fd, reply.substr(5));
}

TEST(QmpLineBufferTest, SplitsPartialLines) {
  LineBuffer b;
  b.Append("{\"a\"");
  EXPECT_FALSE(b.NextLine().has_value());
  b.Append(": 1}\r");
  EXPECT_FALSE(b.NextLine().has_value());
  b.Append("\n{\"b\": 2}\r\n{\"c\"");
  EXPECT_EQ(b.NextLine().value(), "{\"a\": 1}");
  EXPECT_EQ(b.NextLine().value(), "{\"b\": 2}");
  EXPECT_FALSE(b.NextLine().has_value());
  EXPECT_EQ(b.pending_bytes(), 4u);
  b.Append(": 3}\n");
  EXPECT_EQ(b.NextLine().value(), "{\"c\": 3}");
  EXPECT_EQ(b.pending_bytes(), 0u);
}

TEST(QmpFakeServerTest, GreetingRepliesAndEventsInPieces) {
  FakeServer server([](int fd) {
    Handshake(fd);
    std::string cmd = ReadLine(fd);
    // An event, then the reply split mid-token, then an event right behind the reply.
    WriteAll(fd,
             "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 12, \"microseconds\": 34}}\r\n");
    std::string reply = Reply(cmd, "\"return\": {\"status\": \"paused\"}");
    WriteAll(fd, reply.substr(0, 10));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    WriteAll(fd, reply.substr(10) + "{\"event\": \"RESUME\", \"data\": {\"x\": 1}}\r\n");
    ReadLine(fd);  // wait for the client to go away
  });
  auto client = Client::Connect(server.path(), 2000);
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto status = (*client)->Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ((*status)["status"], "paused");
  auto events = (*client)->TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "STOP");
  EXPECT_EQ(events[0].timestamp_us, 12000034);
  EXPECT_TRUE(events[0].data.is_null());
  EXPECT_EQ(events[1].name, "RESUME");
  EXPECT_EQ(events[1].data["x"], 1);
  EXPECT_EQ(events[1].timestamp_us, 0);
  EXPECT_TRUE((*client)->TakeEvents().empty());
}

TEST(QmpFakeServerTest, RejectsWrongGreeting) {
  FakeServer server([](int fd) {
    WriteAll(fd, "{\"hello\": 1}\r\n");
    ReadLine(fd);
  });
  auto client = Client::Connect(server.path(), 2000);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().message(),
            "qmp " + server.path() + ": greeting: expected {\"QMP\": ...}, got {\"hello\":1}");
}

// QEMU's monitor output belongs to the socket, not the connection: a reply owed to a
// client that gave up (and an event) can reach the next client before its greeting.
// They are skipped; the connection works.
TEST(QmpFakeServerTest, StaleReplyBeforeTheGreetingIsSkipped) {
  FakeServer server([](int fd) {
    WriteAll(fd, "{\"id\": 44, \"return\": {\"status\": \"finish-migrate\"}}\r\n");
    WriteAll(fd, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\r\n");
    Handshake(fd);
    std::string cmd = ReadLine(fd);
    WriteAll(fd, Reply(cmd, "\"return\": {\"status\": \"running\"}"));
  });
  auto client = Client::Connect(server.path(), 2000);
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto r = (*client)->Execute("query-status");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["status"], "running");
}

TEST(QmpFakeServerTest, ErrorReplyTextAndMalformedLine) {
  FakeServer server([](int fd) {
    Handshake(fd);
    std::string cmd = ReadLine(fd);
    WriteAll(fd, Reply(cmd, "\"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}"));
    ReadLine(fd);
    WriteAll(fd, "{not json\r\n");
    ReadLine(fd);
  });
  auto client = Client::Connect(server.path(), 2000);
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto r = (*client)->Execute("migrate", {{"uri", "unix:/x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "qmp " + server.path() + ": migrate: GenericError: boom");
  r = (*client)->Execute("query-status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "qmp " + server.path() + ": query-status: malformed line from QEMU: {not json");
}

TEST(QmpFakeServerTest, TimeoutThenStaleReplyIsDropped) {
  FakeServer server([](int fd) {
    Handshake(fd);
    std::string first = ReadLine(fd);  // not answered in time
    std::string second = ReadLine(fd);
    WriteAll(fd, Reply(first, "\"return\": {\"which\": \"first\"}"));
    WriteAll(fd, Reply(second, "\"return\": {\"which\": \"second\"}"));
    ReadLine(fd);
  });
  auto client = Client::Connect(server.path(), 2000);
  ASSERT_TRUE(client.ok()) << client.status().message();
  int64_t start = MonotonicMicros();
  auto r = (*client)->Execute("slow", json::object(), 200);
  ASSERT_FALSE(r.ok());
  EXPECT_GE(MonotonicMicros() - start, 200000);
  EXPECT_EQ(r.status().message(), "qmp " + server.path() + ": slow: no reply within 200 ms");
  EXPECT_TRUE((*client)->last_timed_out());
  EXPECT_FALSE((*client)->closed());
  r = (*client)->Execute("fast");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["which"], "second");
  EXPECT_FALSE((*client)->last_timed_out());
}

TEST(QmpFakeServerTest, PollEventsReportsPeerClose) {
  FakeServer server([](int fd) {
    Handshake(fd);
    WriteAll(fd, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false}}\r\n");
  });
  auto client = Client::Connect(server.path(), 2000);
  ASSERT_TRUE(client.ok()) << client.status().message();
  pollfd p{(*client)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  Status st = Status::Ok();
  for (int i = 0; i < 100 && st.ok(); i++) {  // the close may come after the event
    st = (*client)->PollEvents();
    if (st.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "qmp " + server.path() + ": connection closed by QEMU");
  auto events = (*client)->TakeEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].name, "SHUTDOWN");
  auto r = (*client)->Execute("query-status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "qmp " + server.path() + ": query-status: connection closed by QEMU");
  EXPECT_TRUE((*client)->closed());
  EXPECT_FALSE((*client)->last_timed_out());
}

TEST(QmpConnectTest, MissingSocketTimesOut) {
  int64_t start = MonotonicMicros();
  auto client = Client::Connect("/tmp/gangmig-no-such-dir/x.qmp", 150);
  ASSERT_FALSE(client.ok());
  EXPECT_GE(MonotonicMicros() - start, 150000);
  EXPECT_NE(client.status().message().find("connect: No such file or directory"), std::string::npos)
      << client.status().message();
}

// A bare QEMU (no guest, -S) to talk QMP to.
class QmpRealQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/vm.qmp";
    std::string qmp_arg = "unix:" + path_ + ",server=on,wait=off";
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "64",
             "-nodefaults", "-display", "none", "-S", "-qmp", qmp_arg.c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  std::string dir_, path_;
  pid_t pid_ = -1;
};

TEST_F(QmpRealQemuTest, QueryStatusEventsAndErrors) {
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status().message();
  Client& qmp = **client;
  auto status = qmp.Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ((*status)["status"], "prelaunch");  // -S before the first cont
  EXPECT_EQ((*status)["running"], false);

  int64_t before = WallMicros();
  ASSERT_TRUE(qmp.Execute("cont").ok());
  ASSERT_TRUE(qmp.Execute("stop").ok());
  status = qmp.Execute("query-status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["status"], "paused");
  auto events = qmp.TakeEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "RESUME");
  EXPECT_EQ(events[1].name, "STOP");
  EXPECT_GE(events[1].timestamp_us, events[0].timestamp_us);
  EXPECT_NEAR(double(events[0].timestamp_us), double(before), 5e6);

  auto bad = qmp.Execute("no-such-command");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "qmp " + path_ +
                                        ": no-such-command: CommandNotFound: The command "
                                        "no-such-command has not been found");
  bad = qmp.Execute("migrate", {{"uri", "bogus:x"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(": migrate: GenericError: "), std::string::npos)
      << bad.status().message();
}

// A monitor serves one client: a second one connects but gets no greeting until the
// first leaves.
TEST_F(QmpRealQemuTest, SecondClientWaitsForTheFirst) {
  auto first = Client::Connect(path_);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = Client::Connect(path_, 300);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            "qmp " + path_ +
                ": greeting: timed out (a QMP monitor serves one client at a "
                "time; is another connected?)");
  first->reset();
  auto third = Client::Connect(path_, 5000);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_TRUE((*third)->Execute("query-status").ok());
}

TEST_F(QmpRealQemuTest, KilledQemuGivesErrorNotHang) {
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status().message();
  ASSERT_TRUE((*client)->Execute("query-status").ok());
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  int64_t start = MonotonicMicros();
  auto r = (*client)->Execute("query-status", json::object(), 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(MonotonicMicros() - start, 1000000);
  EXPECT_EQ(r.status().message(), "qmp " + path_ + ": query-status: connection closed by QEMU");
  EXPECT_FALSE((*client)->PollEvents().ok());
}

TEST_F(QmpRealQemuTest, PollEventsAfterPoll) {
  auto client = Client::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status().message();
  // The reply to cont is read with Execute; the RESUME event comes before it.
  ASSERT_TRUE((*client)->Execute("cont").ok());
  ASSERT_TRUE((*client)->Execute("stop").ok());
  ASSERT_EQ((*client)->TakeEvents().size(), 2u);
  // quit: QEMU answers, sends SHUTDOWN, then closes.
  ASSERT_TRUE((*client)->Execute("quit").ok());
  std::vector<Event> events;
  Status st = Status::Ok();
  for (int i = 0; i < 200 && st.ok(); i++) {
    pollfd p{(*client)->fd(), POLLIN, 0};
    poll(&p, 1, 50);
    st = (*client)->PollEvents();
    for (auto& e : (*client)->TakeEvents()) events.push_back(e);
  }
  EXPECT_FALSE(st.ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().name, "SHUTDOWN");
  EXPECT_EQ(events.back().data["guest"], false);
}

}  // namespace
}  // namespace gangmig::qmp
