// The receiver as a peer sees it: a real `RunReceiver` on loopback, a hand-driven sender
// (handshake, records, frames) and a fake destination QEMU (a unix listener). Malformed
// or out-of-place frames must end the session with a clear error, an ABORT to the
// sender, and the destination's connection closed.
#include "migrate/receiver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "encode/delta.h"
#include "encode/frame_compressor.h"
#include "net/socket.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/record.h"

#include "migrate/receiver_test_util.h"

namespace gangmig::migrate {

namespace {

using receiver_testing::FakeSender;
using receiver_testing::kKey;
using receiver_testing::ReceiverTest;

TEST_F(ReceiverTest, RebuildsDataPagesAndReferences) {
  OpenVm();
  Bytes page(4096, 'p'), f;
  wire::AppendData(&f, 0, 0, AsBytes("head"));
  wire::AppendPage(&f, 0, 0, page);
  wire::AppendData(&f, 0, 0, AsBytes("mid"));
  wire::AppendRef(&f, 0, 0, 0);
  wire::AppendChannelEof(&f, 0, 0);
  ASSERT_TRUE(sender_.Send(f).ok());
  std::string expect = "head" + std::string(4096, 'p') + "mid" + std::string(4096, 'p');
  EXPECT_EQ(DestinationBytesUntilClose(), expect);
  // The sender learns how far the destination has been given the stream.
  EXPECT_EQ(sender_.WaitForEvent("progress"),
            R"({"delivered":)" + std::to_string(expect.size()) + R"(,"event":"progress"})");
  ExpectLoadedAndSessionOk();
}

TEST_F(ReceiverTest, ReferenceToUnsentPageEndsTheSession) {
  OpenVm();
  Bytes f;
  wire::AppendData(&f, 0, 0, AsBytes("QEVM"));
  wire::AppendRef(&f, 0, 0, 99);
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kAbort),
            "REF to page id 99 but only 0 pages were sent");
  EXPECT_EQ(ReceiverError(), "REF to page id 99 but only 0 pages were sent");
  // The destination is closed with at most the bytes before the bad frame: QEMU then
  // fails the incomplete load instead of running with wrong memory.
  std::string got = DestinationBytesUntilClose();
  EXPECT_EQ(std::string("QEVM").rfind(got, 0), 0u) << got;
}

// A sender names VMs, never sockets: a VM_OPEN that says where to write ends the
// session, and the fake destination (which a v5 sender could have named) is never
// connected to.
TEST_F(ReceiverTest, SenderCannotNameADestination) {
  Bytes f;
  wire::AppendVmOpen(&f, 0, R"({"name":"t1","dest":"unix:/run/other-vm.qmp"})");
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kAbort), R"(vm id 0: VM_OPEN: unknown field "dest")");
  EXPECT_EQ(ReceiverError(), R"(vm id 0: VM_OPEN: unknown field "dest")");
  EXPECT_FALSE(std::move(net::Accept(dest_.get())).value().valid());
}

// A name the receiver host has no destination for fails that VM only, with the reason;
// the session goes on and serves the next VM.
TEST_F(ReceiverTest, UnmappedVmFailsAloneWithTheReason) {
  Bytes f;
  wire::AppendVmOpen(&f, 0, R"({"name":"t9"})");
  ASSERT_TRUE(sender_.Send(f).ok());
  std::string ev = sender_.WaitFor(wire::FrameType::kVmEvent);
  EXPECT_NE(ev.find(R"("event":"failed")"), std::string::npos) << ev;
  EXPECT_NE(ev.find("receiver has no destination for vm t9: " + dest_dir_ +
                    "/t9.sock does not exist"),
            std::string::npos)
      << ev;
  Bytes g;
  wire::AppendVmOpen(&g, 1, R"({"name":"t1"})");
  wire::AppendPing(&g);
  ASSERT_TRUE(sender_.Send(g).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kVmEvent), R"({"event":"ready"})");
  Bytes bye;
  wire::AppendGoodbye(&bye);
  ASSERT_TRUE(sender_.Send(bye).ok());
  net::Fd qemu;
  for (int i = 0; i < 100 && !qemu.valid(); ++i) {
    qemu = std::move(net::Accept(dest_.get())).value();
    if (!qemu.valid()) usleep(10000);
  }
  ASSERT_TRUE(qemu.valid());
  qemu.Reset();  // "loaded": the session can end
  EXPECT_EQ(ReceiverError(), "<ok>");
}

class DestWaitTest : public ReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override { o->dest_wait_ms = 3000; }
};

// --dest-wait: a destination that appears only after its VM opened (as under libvirt,
// where the migration itself creates the destination QEMU): "ready" at once, the frames
// sent meanwhile wait, and arrive once the socket is there.
TEST_F(DestWaitTest, DestinationThatAppearsLaterGetsEverything) {
  Bytes f;
  wire::AppendVmOpen(&f, 0, R"({"name":"t2"})");
  wire::AppendData(&f, 0, 0, AsBytes("early "));
  wire::AppendPage(&f, 0, 0, Bytes(4096, 'p'));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kVmEvent), R"({"event":"ready"})");
  usleep(300000);
  std::string later = dest_dir_ + "/t2.sock";
  net::Fd listener = std::move(net::Listen(*net::ParseAddress("unix:" + later))).value();
  for (int i = 0; i < 200 && !qemu_.valid(); ++i) {
    qemu_ = std::move(net::Accept(listener.get())).value();
    if (!qemu_.valid()) usleep(10000);
  }
  ASSERT_TRUE(qemu_.valid());
  Bytes more;
  wire::AppendData(&more, 0, 0, AsBytes("late"));
  wire::AppendChannelEof(&more, 0, 0);
  ASSERT_TRUE(sender_.Send(more).ok());
  EXPECT_EQ(DestinationBytesUntilClose(), "early " + std::string(4096, 'p') + "late");
  ExpectLoadedAndSessionOk();
  unlink(later.c_str());
}

// QEMU takes the first connection as the main channel: a second channel (multifd) opened
// while the first still waits for its destination connects after it, never before,
// even when the destination appears just as the channel opens.
TEST_F(DestWaitTest, ChannelsConnectInOrderWhenTheDestinationAppears) {
  for (int round = 0; round < 5; ++round) {
    std::string name = "o" + std::to_string(round);
    Bytes f;
    wire::AppendVmOpen(&f, uint16_t(round), "{\"name\":\"" + name + "\"}");
    wire::AppendData(&f, uint16_t(round), 0, AsBytes("main"));
    ASSERT_TRUE(sender_.Send(f).ok());
    EXPECT_EQ(sender_.WaitForEvent("ready"), R"({"event":"ready"})");
    usleep(20000 * round);  // at different points of the retry period
    std::string path = dest_dir_ + "/" + name + ".sock";
    net::Fd listener = std::move(net::Listen(*net::ParseAddress("unix:" + path))).value();
    Bytes more;
    wire::AppendChannelOpen(&more, uint16_t(round), 1);
    wire::AppendData(&more, uint16_t(round), 1, AsBytes("extra"));
    ASSERT_TRUE(sender_.Send(more).ok());
    std::vector<net::Fd> conns;
    for (int i = 0; i < 300 && conns.size() < 2; ++i) {
      net::Fd c = std::move(net::Accept(listener.get())).value();
      if (c.valid()) conns.push_back(std::move(c));
      else usleep(10000);
    }
    ASSERT_EQ(conns.size(), 2u);
    char buf[16] = {};
    pollfd p{conns[0].get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    ssize_t n = read(conns[0].get(), buf, sizeof(buf));
    EXPECT_EQ(std::string(buf, size_t(std::max<ssize_t>(n, 0))), "main") << "round " << round;
    unlink(path.c_str());
  }
  Bytes end;
  wire::AppendAbort(&end, "test over");  // the session ends now, its VMs unfinished
  ASSERT_TRUE(sender_.Send(end).ok());
}

// ... and one that never appears fails alone, after the wait, with the reason.
TEST_F(DestWaitTest, DestinationThatNeverAppearsFailsAfterTheWait) {
  Bytes f;
  wire::AppendVmOpen(&f, 0, R"({"name":"t3"})");
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kVmEvent), R"({"event":"ready"})");
  std::string ev = sender_.WaitFor(wire::FrameType::kVmEvent);
  for (int i = 0; i < 5 && ev.find("failed") == std::string::npos; ++i)
    ev = sender_.WaitFor(wire::FrameType::kVmEvent);
  EXPECT_NE(ev.find("destination QEMU: connect to unix:" + dest_dir_ + "/t3.sock"),
            std::string::npos)
      << ev;
  EXPECT_NE(ev.find("(still, after waiting 3 s: --dest-wait)"), std::string::npos) << ev;
  Bytes bye;
  wire::AppendGoodbye(&bye);
  ASSERT_TRUE(sender_.Send(bye).ok());
  EXPECT_EQ(ReceiverError(), "<ok>");  // the VM failed alone; the session ended cleanly
}

TEST_F(ReceiverTest, FrameForUnopenedVmEndsTheSession) {
  Bytes f;
  wire::AppendData(&f, 3, 0, AsBytes("x"));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(ReceiverError(), "frame for vm id 3 that was never opened");
}

TEST_F(ReceiverTest, ReceiverOnlyFrameFromSenderEndsTheSession) {
  OpenVm();
  Bytes f;
  wire::AppendRpData(&f, 0, 0, AsBytes("x"));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(ReceiverError(), "sender sent a RP_DATA frame, which only a receiver may send");
}

TEST_F(ReceiverTest, TamperedRecordEndsTheSession) {
  OpenVm();
  Bytes f, rec;
  wire::AppendData(&f, 0, 0, AsBytes("QEVM"));
  sender_.sealer->Seal(f, &rec);
  rec[6] ^= 1;  // a bit flipped on the wire
  ASSERT_TRUE(net::WriteFull(sender_.fd.get(), rec, 2000).ok());
  EXPECT_EQ(ReceiverError(), "from sender: record 1: bad authentication tag");
  EXPECT_EQ(DestinationBytesUntilClose(), "");  // nothing unauthenticated reached QEMU
}

// DATA, PAGE and DELTA frames inside one ZFRAMES frame, as the sender compresses them.
Bytes CompressedFrames(const Bytes& frames) {
  encode::FrameCompressor z({.mode = encode::CompressionOptions::Mode::kAlways});
  Bytes out;
  EXPECT_TRUE(z.Transform(frames, &out));
  return out;
}

TEST_F(ReceiverTest, ExpandsZFramesAndAppliesDeltas) {
  OpenVm();
  Bytes page(4096, 'p'), changed = page, f, delta;
  std::fill(changed.begin() + 64, changed.begin() + 72, 'q');
  ASSERT_GT(encode::EncodeDelta(page, changed, 4096, &delta), 0u);
  wire::AppendData(&f, 0, 0, AsBytes("head"));
  wire::AppendPage(&f, 0, 0, page);
  wire::AppendDelta(&f, 0, 0, 0, delta);
  wire::AppendRef(&f, 0, 0, 1);  // the delta's result is page 1
  ASSERT_TRUE(sender_.Send(CompressedFrames(f)).ok());
  Bytes eof;
  wire::AppendChannelEof(&eof, 0, 0);
  ASSERT_TRUE(sender_.Send(eof).ok());
  std::string c(changed.begin(), changed.end());
  EXPECT_EQ(DestinationBytesUntilClose(), "head" + std::string(4096, 'p') + c + c);
  ExpectLoadedAndSessionOk();
}

// The decompression pool: ZFRAMES bodies are inflated by 0 (on the data thread), 1 or 3
// workers; whatever finishes first, the destination core sees the bodies in order.
class ReceiverPoolTest : public ReceiverTest, public ::testing::WithParamInterface<int> {
 protected:
  int ReceiverThreads() const override { return GetParam(); }

  // `n` sealed records, all sent at once so that many bodies are in the pool together
  // (each is ~100 bytes on the wire, so one read of the link holds them all). Body i
  // holds DATA "body i|", a PAGE of its own (page id i) and a REF to page id i/2 from an
  // earlier body, so a body handled out of order changes the rebuilt stream. Most are
  // one ZFRAMES frame; every 7th is sent raw and only keeps its place in the pool.
  // *expect: the stream the destination must get. Body `corrupt_at` (if any) is a
  // ZFRAMES frame whose zstd magic is broken, and ends *expect.
  Bytes Bodies(int n, std::string* expect, int corrupt_at = -1) {
    Bytes records;
    for (int i = 0; i < n; ++i) {
      Bytes f, page(4096, uint8_t('A' + i % 26));
      std::string head = "body " + std::to_string(i) + "|";
      std::copy(head.begin(), head.end(), page.begin());
      wire::AppendData(&f, 0, 0, AsBytes(head));
      wire::AppendPage(&f, 0, 0, page);
      std::string ref = i > 0 ? Page(i / 2) : "";
      if (i > 0) wire::AppendRef(&f, 0, 0, uint32_t(i / 2));
      Bytes body = i % 7 == 3 && i != corrupt_at ? f : CompressedFrames(f);
      if (i == corrupt_at) body[wire::kZFramesHeaderSize + wire::kZFramesRawLenSize] ^= 0xff;
      if (corrupt_at < 0 || i < corrupt_at)
        *expect += head + std::string(page.begin(), page.end()) + ref;
      sender_.sealer->Seal(body, &records);
    }
    return records;
  }
  static std::string Page(int i) {
    std::string head = "body " + std::to_string(i) + "|";
    return head + std::string(4096 - head.size(), char('A' + i % 26));
  }
  void ExpectCorruptBodyEndsTheSession(int n, int corrupt_at);
  // Everything the fake QEMU receives until the receiver closes the connection, read on
  // a thread so the receiver never waits for it.
  std::future<std::string> ReadDestination() {
    return std::async(std::launch::async, [this] {
      std::string got;
      Bytes buf(1 << 16);
      for (;;) {
        pollfd p{qemu_.get(), POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0) return got + "<not closed>";
        ssize_t n = read(qemu_.get(), buf.data(), buf.size());
        if (n <= 0) return got;
        got.append(reinterpret_cast<const char*>(buf.data()), size_t(n));
      }
    });
  }
};

TEST_P(ReceiverPoolTest, ManyZFramesBodiesInFlightRebuildByteForByteInOrder) {
  OpenVm();
  auto got = ReadDestination();
  std::string expect;
  Bytes records = Bodies(300, &expect);
  Bytes eof;
  wire::AppendChannelEof(&eof, 0, 0);
  sender_.sealer->Seal(eof, &records);
  ASSERT_TRUE(net::WriteFull(sender_.fd.get(), records, 5000).ok());
  std::string rebuilt = got.get();
  EXPECT_EQ(rebuilt.size(), expect.size());
  EXPECT_TRUE(rebuilt == expect);  // not EXPECT_EQ: a 2.4 MB diff helps nobody
  ExpectLoadedAndSessionOk();
}

// Sends `n` bodies of which body `corrupt_at` cannot be inflated, then a body with an
// error of its own (handled first, it would win), then closes the connection at once.
// The session must end with the corrupt body's error, after the bodies before it.
void ReceiverPoolTest::ExpectCorruptBodyEndsTheSession(int n, int corrupt_at) {
  OpenVm();
  auto got = ReadDestination();
  std::string expect;
  Bytes records = Bodies(n, &expect, corrupt_at);
  Bytes bad_ref;
  wire::AppendRef(&bad_ref, 0, 0, 99999);
  sender_.sealer->Seal(bad_ref, &records);
  ASSERT_TRUE(net::WriteFull(sender_.fd.get(), records, 5000).ok());
  shutdown(sender_.fd.get(), SHUT_WR);
  EXPECT_EQ(ReceiverError(), "ZFRAMES: zstd: Unknown frame descriptor");
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kAbort), "ZFRAMES: zstd: Unknown frame descriptor");
  // The destination is closed with at most the stream before the bad body.
  std::string rebuilt = got.get();
  EXPECT_LE(rebuilt.size(), expect.size());
  EXPECT_TRUE(expect.compare(0, rebuilt.size(), rebuilt) == 0);
}

TEST_P(ReceiverPoolTest, CorruptZFramesBodyAmongManyEndsTheSessionWithItsError) {
  ExpectCorruptBodyEndsTheSession(200, 120);
}

// The corrupt body is among the last ones, still in the pool when the receiver reads the
// end of the connection: the queued bodies are handled before "connection lost" counts.
TEST_P(ReceiverPoolTest, CorruptBodyStillQueuedAtEndOfConnectionWins) {
  ExpectCorruptBodyEndsTheSession(200, 199);
}

INSTANTIATE_TEST_SUITE_P(Threads, ReceiverPoolTest, ::testing::Values(0, 1, 3),
                         [](const auto& info) { return std::to_string(info.param) + "threads"; });

// `receive --disable zstd,delta`: the handshake agrees on neither, and a sender that
// sends them anyway is stopped before anything reaches the destination.
class ReceiverWithoutEncodings : public ReceiverTest {
  uint16_t ReceiverFeatures() const override { return 0; }
};

TEST_F(ReceiverWithoutEncodings, RefusesZFramesItDidNotAgreeTo) {
  OpenVm();
  Bytes f;
  wire::AppendData(&f, 0, 0, Bytes(1000, 'x'));
  ASSERT_TRUE(sender_.Send(CompressedFrames(f)).ok());
  EXPECT_EQ(ReceiverError(), "sender sent a ZFRAMES frame, but zstd was not negotiated");
  EXPECT_EQ(DestinationBytesUntilClose(), "");
}

TEST_F(ReceiverWithoutEncodings, RefusesDeltaItDidNotAgreeTo) {
  OpenVm();
  Bytes f;
  const uint8_t delta[] = {0, 1, 'x'};
  wire::AppendPage(&f, 0, 0, Bytes(4096, 'p'));
  wire::AppendDelta(&f, 0, 0, 0, ByteView(delta, sizeof(delta)));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(ReceiverError(), "sender sent a DELTA frame, but delta was not negotiated");
}

}  // namespace
}  // namespace gangmig::migrate

namespace gangmig::migrate {
namespace {

// A TCP connection to 127.0.0.1:port from another loopback address (another "host").
net::Fd ConnectFrom(const char* source, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
    close(fd);
    return net::Fd();
  }
  return net::Fd(fd);
}

// A --once receiver on a free loopback port, for handshake tests (no VM is opened).
std::future<Status> StartBareReceiver(uint16_t* port) {
  auto l = net::Listen(*net::ParseAddress("127.0.0.1:0"));
  *port = *net::LocalPort(l->get());
  l->Reset();
  ReceiverOptions o;
  o.listen = "127.0.0.1:" + std::to_string(*port);
  o.key = kKey;
  o.once = true;
  o.verbose = false;
  o.dest_dir = "/nonexistent";
  return std::async(std::launch::async, [o] { return RunReceiver(o); });
}

// Strangers that connect and say nothing (or half a hello) must not delay a real
// sender: handshakes run side by side, each stranger address holds at most 8 slots. The
// sender's reads time out after 2 s; with handshakes served one at a time (10 s each),
// it would fail.
TEST(ReceiverHandshakes, IdleStrangersDoNotDelayARealSender) {
  uint16_t port = 0;
  auto result = StartBareReceiver(&port);
  std::vector<net::Fd> strangers;
  for (int i = 0; i < 200 && strangers.empty(); ++i) {
    net::Fd f = ConnectFrom("127.0.0.2", port);
    if (f.valid())
      strangers.push_back(std::move(f));
    else
      usleep(20000);
  }
  ASSERT_FALSE(strangers.empty());
  for (int i = 0; i < 30; ++i) strangers.push_back(ConnectFrom("127.0.0.3", port));
  net::Fd half = ConnectFrom("127.0.0.4", port);
  ASSERT_TRUE(half.valid());
  wire::ClientHandshake other(kKey, wire::kFeaturesKnown);
  Bytes partial = other.Hello();
  partial.resize(39);
  ASSERT_TRUE(net::WriteFull(half.get(), partial, 1000).ok());

  FakeSender sender;
  Status st = sender.Connect(port);
  ASSERT_TRUE(st.ok()) << st.message();
  Bytes frames;
  wire::AppendGoodbye(&frames);
  ASSERT_TRUE(sender.Send(frames).ok());
  Status done = result.get();  // also: the strangers do not keep a --once receiver alive
  EXPECT_TRUE(done.ok()) << done.message();
  // Every stranger's connection is closed: beyond 8 per address at once, the others
  // when the --once receiver ended.
  int closed = 0;
  for (auto& f : strangers) {
    char b;
    pollfd p{f.get(), POLLIN, 0};
    if (f.valid() && poll(&p, 1, 0) == 1 && read(f.get(), &b, 1) == 0) ++closed;
  }
  EXPECT_EQ(closed, int(strangers.size()));
}

// A sender of another protocol version is answered with the receiver's own hello
// header (so it can name both versions), then refused; the receiver keeps serving.
TEST(ReceiverHandshakes, OtherVersionIsToldOurs) {
  uint16_t port = 0;
  auto result = StartBareReceiver(&port);
  net::Fd old;
  for (int i = 0; i < 200 && !old.valid(); ++i) {
    old = ConnectFrom("127.0.0.5", port);
    if (!old.valid()) usleep(20000);
  }
  ASSERT_TRUE(old.valid());
  wire::ClientHandshake c(kKey, wire::kFeaturesKnown);
  Bytes hello = c.Hello();
  hello[5] = 5;  // a version 5 sender
  ASSERT_TRUE(net::WriteFull(old.get(), hello, 1000).ok());
  Bytes answer(wire::kHelloHeaderSize);
  ASSERT_TRUE(net::ReadFull(old.get(), answer.data(), answer.size(), 2000).ok());
  EXPECT_EQ(answer, wire::VersionHeader());
  EXPECT_EQ(wire::CheckHelloHeader(answer).ok(), true);
  uint8_t more;
  EXPECT_FALSE(net::ReadFull(old.get(), &more, 1, 2000).ok());  // then closed
  FakeSender sender;
  ASSERT_TRUE(sender.Connect(port).ok());
  Bytes bye;
  wire::AppendGoodbye(&bye);
  ASSERT_TRUE(sender.Send(bye).ok());
  EXPECT_TRUE(result.get().ok());
}

}  // namespace
}  // namespace gangmig::migrate
