// Test support for the receiver as a peer sees it: a real `RunReceiver` on loopback, a
// hand-driven sender (handshake, records, frames) and a fake destination QEMU (a unix
// listener in the receiver's --dest-dir, as VM "t1"). Included by the receiver's tests
// only.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <string>

#include "migrate/receiver.h"
#include "net/socket.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/record.h"

namespace gangmig::migrate::receiver_testing {

inline const Bytes kKey(32, 0x42);

struct FakeSender {
  net::Fd fd;
  std::unique_ptr<wire::RecordSealer> sealer;
  std::unique_ptr<wire::RecordOpener> opener;

  Status Connect(uint16_t port) {
    auto c = net::Connect(*net::ParseAddress("127.0.0.1:" + std::to_string(port)), 2000);
    for (int i = 0; i < 100 && !c.ok(); ++i) {
      usleep(20000);
      c = net::Connect(*net::ParseAddress("127.0.0.1:" + std::to_string(port)), 2000);
    }
    if (!c.ok()) return c.status();
    fd = std::move(c).value();
    wire::ClientHandshake hs(kKey, wire::kFeaturesKnown);
    GANGMIG_RETURN_IF_ERROR(net::WriteFull(fd.get(), hs.Hello(), 2000));
    Bytes hello(wire::kServerHelloSize);
    GANGMIG_RETURN_IF_ERROR(net::ReadFull(fd.get(), hello.data(), hello.size(), 2000));
    auto proof = hs.OnServerHello(hello);
    if (!proof.ok()) return proof.status();
    GANGMIG_RETURN_IF_ERROR(net::WriteFull(fd.get(), *proof, 2000));
    sealer = std::make_unique<wire::RecordSealer>(hs.keys().c2s);
    opener = std::make_unique<wire::RecordOpener>(hs.keys().s2c);
    return Status::Ok();
  }
  Status Send(const Bytes& frames) {
    Bytes rec;
    sealer->Seal(frames, &rec);
    return net::WriteFull(fd.get(), rec, 2000);
  }
  // Reads frames until one of `type` arrives; returns its payload as text.
  std::string WaitFor(wire::FrameType type) {
    Bytes buf(65536), body;
    for (int i = 0; i < 200; ++i) {
      for (;;) {
        auto next = opener->Next(&body);
        if (!next.ok() || !*next) break;
        wire::FrameReader r(body);
        wire::Frame f;
        while (r.Next(&f).ok() && f.type != wire::FrameType::kGoodbye) {
          if (f.type == type) return std::string(AsChars(f.payload));
          if (r.offset() >= body.size()) break;
        }
      }
      pollfd p{fd.get(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = read(fd.get(), buf.data(), buf.size());
      if (n <= 0) return "<closed>";
      opener->Feed(ByteView(buf.data(), size_t(n)));
    }
    return "<timeout>";
  }
  // The next VM_EVENT named `name` ("done", "progress", ...), skipping other events.
  std::string WaitForEvent(const std::string& name) {
    for (int i = 0; i < 100; ++i) {
      std::string ev = WaitFor(wire::FrameType::kVmEvent);
      if (ev.rfind("<", 0) == 0 || ev.find(R"("event":")" + name + R"(")") != std::string::npos)
        return ev;
    }
    return "<no " + name + " event>";
  }
};

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = net::Listen(*net::ParseAddress("127.0.0.1:0"));
    port_ = *net::LocalPort(l->get());
    l->Reset();
    // The receiver host's destination directory: vm "t1" goes to DIR/t1.sock.
    dest_dir_ = "/tmp/gangmig-receiver-test-" + std::to_string(getpid());
    mkdir(dest_dir_.c_str(), 0700);
    dest_path_ = dest_dir_ + "/t1.sock";
    dest_ = std::move(net::Listen(*net::ParseAddress("unix:" + dest_path_))).value();
    ReceiverOptions o;
    o.features = ReceiverFeatures();
    o.listen = "127.0.0.1:" + std::to_string(port_);
    o.key = kKey;
    o.once = true;
    o.verbose = false;
    o.threads = ReceiverThreads();
    o.dest_dir = dest_dir_;
    Tune(&o);
    result_ = std::async(std::launch::async, [o] { return RunReceiver(o); });
    ASSERT_TRUE(sender_.Connect(port_).ok());
  }
  void TearDown() override {
    unlink(dest_path_.c_str());
    rmdir(dest_dir_.c_str());
  }
  virtual uint16_t ReceiverFeatures() const { return wire::kFeaturesKnown; }
  virtual int ReceiverThreads() const { return OrderedWork::DefaultThreads(); }
  // Changes the receiver's options before it starts.
  virtual void Tune(ReceiverOptions* o) {}

  // Opens vm 0 towards the fake destination and accepts that connection.
  void OpenVm() {
    Bytes f;
    wire::AppendVmOpen(&f, 0, R"({"name":"t1"})");
    ASSERT_TRUE(sender_.Send(f).ok());
    EXPECT_EQ(sender_.WaitFor(wire::FrameType::kVmEvent), R"({"event":"ready"})");
    for (int i = 0; i < 100 && !qemu_.valid(); ++i) {
      qemu_ = std::move(net::Accept(dest_.get())).value();
      if (!qemu_.valid()) usleep(10000);
    }
    ASSERT_TRUE(qemu_.valid());
  }
  // The destination closes (it loaded the stream): the receiver reports "done", and
  // after GOODBYE the session ends cleanly.
  void ExpectLoadedAndSessionOk() {
    qemu_.Reset();
    EXPECT_NE(sender_.WaitForEvent("done").find(R"("event":"done")"), std::string::npos);
    Bytes bye;
    wire::AppendGoodbye(&bye);
    ASSERT_TRUE(sender_.Send(bye).ok());
    EXPECT_EQ(ReceiverError(), "<ok>");
  }
  std::string ReceiverError() {
    Status st = result_.get();
    return st.ok() ? "<ok>" : st.message();
  }
  // Reads what the fake QEMU got until the receiver closes the connection.
  std::string DestinationBytesUntilClose() {
    std::string got;
    char buf[4096];
    for (int i = 0; i < 200; ++i) {
      pollfd p{qemu_.get(), POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      ssize_t n = read(qemu_.get(), buf, sizeof(buf));
      if (n <= 0) return got;
      got.append(buf, size_t(n));
    }
    return got + "<not closed>";
  }

  uint16_t port_ = 0;
  std::string dest_dir_, dest_path_;
  net::Fd dest_, qemu_;
  FakeSender sender_;
  std::future<Status> result_;
};

// This process's resident memory, in bytes (the receiver runs in it).
inline uint64_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string key;
  uint64_t kib = 0;
  while (f >> key) {
    if (key == "VmRSS:") {
      f >> kib;
      break;
    }
  }
  return kib << 10;
}

// Reads up to `n` bytes from `fd` (waiting at most `ms` for each read); returns how
// many arrived and whether all were `byte`.
inline std::pair<size_t, bool> Drain(int fd, size_t n, uint8_t byte, int ms = 5000) {
  Bytes buf(1 << 20);
  size_t got = 0;
  bool same = true;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) break;
    ssize_t r = read(fd, buf.data(), std::min(buf.size(), n - got));
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; ++i) same = same && buf[size_t(i)] == byte;
    got += size_t(r);
  }
  return {got, same};
}

}  // namespace gangmig::migrate::receiver_testing
