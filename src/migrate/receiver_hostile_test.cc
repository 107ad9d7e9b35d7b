// A sender that holds the key but not the rules: it floods references against a
// destination that has stopped reading, sends distinct pages without end, feeds one
// destination that hangs while another works, or goes silent. The receiver must stay
// within its bounds (memory counted before frames expand), fail only what is stuck, and
// notice silence; each case names its reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "encode/frame_compressor.h"
#include "migrate/receiver_test_util.h"

namespace gangmig::migrate {
namespace {

using receiver_testing::Drain;
using receiver_testing::ReceiverTest;
using receiver_testing::RssBytes;

// A record body of `n` REFs to page 0 of vm `vm`: 8 bytes each, 4 KiB each once expanded.
Bytes Refs(uint16_t vm, int n) {
  Bytes f;
  for (int i = 0; i < n; ++i) wire::AppendRef(&f, vm, 0, 0);
  return f;
}

Bytes Compressed(const Bytes& frames) {
  encode::FrameCompressor z({.mode = encode::CompressionOptions::Mode::kAlways});
  Bytes out;
  EXPECT_TRUE(z.Transform(frames, &out));
  return out;
}

class BoundedReceiverTest : public ReceiverTest, public ::testing::WithParamInterface<bool> {
 protected:
  void Tune(ReceiverOptions* o) override {
    o->max_buffer = 1 << 20;
    o->max_session_buffer = 4 << 20;
  }
};

// 64 records of 8000 REFs each: 4 MiB on the link, 2 GiB once expanded, towards a
// destination that reads nothing. Handed over whole, one record would queue 31 MiB;
// counted before expanding, the receiver holds about max_buffer and stops reading the
// link. When the destination reads again, the stream flows on, byte for byte. With the
// parameter, the records are compressed (one ZFRAMES each): inflated on the pool, then
// handed over frame by frame like any other body.
TEST_P(BoundedReceiverTest, RefFloodAgainstAStoppedDestinationStaysBounded) {
  OpenVm();
  Bytes first;
  wire::AppendPage(&first, 0, 0, Bytes(4096, 'p'));
  ASSERT_TRUE(sender_.Send(first).ok());
  Bytes refs = Refs(0, 8000);
  if (GetParam()) refs = Compressed(refs);
  uint64_t before = RssBytes();
  auto start = std::chrono::steady_clock::now();
  int sent = 0;
  for (; sent < 64; ++sent) {
    int left = 3000 - int(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count());
    Bytes rec;
    sender_.sealer->Seal(refs, &rec);
    if (left <= 0 || !net::WriteFull(sender_.fd.get(), rec, left).ok()) break;
  }
  usleep(300000);  // let the receiver take in whatever the link holds
  uint64_t after = RssBytes(), grown = after > before ? after - before : 0;
  EXPECT_LT(grown, uint64_t{48} << 20) << sent << " records sent";
  RecordProperty("records_sent", sent);
  RecordProperty("rss_growth_kib", int(grown >> 10));
  // The destination wakes up: the page and the references arrive, all of them 'p'.
  auto [got, same] = Drain(qemu_.get(), size_t(64) << 20, 'p');
  EXPECT_EQ(got, size_t(64) << 20);
  EXPECT_TRUE(same);
  qemu_.Reset();  // the destination goes away: the session ends, failing the VM
  sender_.fd.Reset();
  EXPECT_NE(ReceiverError(), "<ok>");
}

INSTANTIATE_TEST_SUITE_P(PlainAndCompressed, BoundedReceiverTest, ::testing::Bool());

class StoreCapTest : public ReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override { o->max_store = 1 << 20; }
};

// Distinct pages without end: the session stops at its store cap, with the reason.
TEST_F(StoreCapTest, EndlessDistinctPagesHitTheStoreCap) {
  OpenVm();
  for (int r = 0; r < 2; ++r) {
    Bytes f;
    for (int i = 0; i < 150; ++i) {
      Bytes page(4096, uint8_t(i));
      page[0] = uint8_t(r);
      wire::AppendPage(&f, 0, 0, page);
    }
    ASSERT_TRUE(sender_.Send(f).ok());
  }
  const char* why = "session stores more than 1 MiB of distinct pages (receive --max-store)";
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kAbort), why);
  EXPECT_EQ(ReceiverError(), why);
}

class StallTest : public ReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override {
    o->max_buffer = 1 << 20;
    o->dest_stall_ms = 1000;
  }
};

// Two VMs; t1's destination hangs (reads nothing), t2's works. The frames for t2 come
// after 8 MiB for t1, more than t1's queue and socket hold: t1 fails alone after the
// stall deadline, its queue is dropped, and t2 gets its stream and completes.
TEST_F(StallTest, HungDestinationFailsAloneAndTheOthersGoOn) {
  net::Fd l2 =
      std::move(net::Listen(*net::ParseAddress("unix:" + dest_dir_ + "/t2.sock"))).value();
  OpenVm();
  Bytes open2;
  wire::AppendVmOpen(&open2, 1, R"({"name":"t2"})");
  ASSERT_TRUE(sender_.Send(open2).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kVmEvent), R"({"event":"ready"})");
  net::Fd q2;
  for (int i = 0; i < 100 && !q2.valid(); ++i) {
    q2 = std::move(net::Accept(l2.get())).value();
    if (!q2.valid()) usleep(10000);
  }
  ASSERT_TRUE(q2.valid());
  Bytes f;
  wire::AppendPage(&f, 0, 0, Bytes(4096, 'p'));
  ASSERT_TRUE(sender_.Send(f).ok());
  ASSERT_TRUE(sender_.Send(Refs(0, 2048)).ok());
  Bytes g;
  wire::AppendData(&g, 1, 0, AsBytes("hello"));
  wire::AppendChannelEof(&g, 1, 0);
  ASSERT_TRUE(sender_.Send(g).ok());
  std::string ev = sender_.WaitForEvent("failed");
  EXPECT_NE(ev.find("the destination QEMU took none of the"), std::string::npos) << ev;
  EXPECT_NE(ev.find("waiting for it for 1 s (stopped, hung or not reading)"), std::string::npos)
      << ev;
  std::string got;
  char buf[64];
  for (ssize_t n; (n = read(q2.get(), buf, sizeof(buf))) != 0;) {
    if (n > 0) got.append(buf, size_t(n));
    if (n < 0) usleep(10000);
  }
  EXPECT_EQ(got, "hello");
  q2.Reset();  // t2's destination loaded its stream
  EXPECT_NE(sender_.WaitForEvent("done").find(R"("event":"done")"), std::string::npos);
  Bytes bye;
  wire::AppendGoodbye(&bye);
  ASSERT_TRUE(sender_.Send(bye).ok());
  EXPECT_EQ(ReceiverError(), "<ok>");
}

class IdleTest : public ReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override {
    o->idle_ms = 1500;
    o->keepalive_ms = 200;
  }
};

// The receiver sends PINGs while it has nothing else to say; a sender that keeps sending
// PINGs keeps the session alive past the idle limit; one that goes silent is dropped
// with the reason.
TEST_F(IdleTest, KeepalivesFlowAndSilenceEndsTheSession) {
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kPing), "");
  for (int i = 0; i < 6; ++i) {
    Bytes ping;
    wire::AppendPing(&ping);
    ASSERT_TRUE(sender_.Send(ping).ok());
    usleep(500000);
  }
  EXPECT_EQ(result_.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  EXPECT_EQ(ReceiverError(), "no data from the sender for 1.5 s (link stalled or sender stopped)");
}

}  // namespace
}  // namespace gangmig::migrate
