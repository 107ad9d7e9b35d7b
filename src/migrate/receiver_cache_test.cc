// The receiver's side of the page cache protocol, as a peer sees it: CREFs the cache
// holds are delivered without a word; one it does not hold is asked for (NEED) and
// delivered once the sender's FILL arrives, while the frames behind it wait; a FILL that
// is not the named page, or that nobody asked for, ends the session with its reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "migrate/receiver_test_util.h"
#include "store/page_cache.h"

namespace gangmig::migrate {
namespace {

using receiver_testing::Drain;
using receiver_testing::ReceiverTest;
using receiver_testing::RssBytes;

Bytes Page(char c) { return Bytes(wire::kPageSize, uint8_t(c)); }

Bytes KeyOf(const Bytes& page) {
  index::Sha256Pages fp;
  index::Digest d = fp.Of(page);
  return Bytes(d.bytes.begin(), d.bytes.end());
}

class CacheReceiverTest : public ReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override {
    o->cache_dir = dest_dir_ + "/cache";
    auto cache = store::PageCache::Open(o->cache_dir, 1 << 30);  // before the receiver opens it
    ASSERT_TRUE(cache.ok()) << cache.status().message();
    index::Sha256Pages fp;
    Bytes cached = Page('c');
    ASSERT_TRUE((*cache)->Put(fp.Of(cached), cached).ok());
  }
  void TearDown() override {
    std::filesystem::remove_all(dest_dir_ + "/cache");
    ReceiverTest::TearDown();
  }
};

TEST_F(CacheReceiverTest, CachedPageIsDeliveredWithoutAsking) {
  OpenVm();
  Bytes f;
  wire::AppendData(&f, 0, 0, AsBytes("a"));
  wire::AppendCref(&f, 0, 0, KeyOf(Page('c')));
  wire::AppendRef(&f, 0, 0, 0);  // the CREF's content got page id 0
  wire::AppendChannelEof(&f, 0, 0);
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(DestinationBytesUntilClose(), "a" + std::string(4096, 'c') + std::string(4096, 'c'));
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kCacheAck), "");
  ExpectLoadedAndSessionOk();
}

// A CREF the cache does not hold (evicted since the summary, a false positive): the
// receiver asks for it and waits with the frames behind it; the FILL completes it.
class SeededCacheTest : public CacheReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override {
    CacheReceiverTest::Tune(o);
    // A neighbour's RAM file: a zero page and a page of 's'.
    std::string ram = dest_dir_ + "/neighbour.ram";
    Bytes content(wire::kPageSize, 0);
    Bytes s = Page('s');
    content.insert(content.end(), s.begin(), s.end());
    std::ofstream(ram, std::ios::binary).write(reinterpret_cast<const char*>(content.data()),
                                               std::streamsize(content.size()));
    o->seed_from = {ram, dest_dir_ + "/gone.ram"};
  }
};

// --seed-from: a page of a VM running on the receiver's host is found without asking;
// a seed file that went away is skipped.
TEST_F(SeededCacheTest, PageOfARunningNeighbourIsFoundWithoutAsking) {
  OpenVm();
  Bytes f;
  wire::AppendCref(&f, 0, 0, KeyOf(Page('s')));
  wire::AppendChannelEof(&f, 0, 0);
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(DestinationBytesUntilClose(), std::string(4096, 's'));
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kCacheAck), "");
  ExpectLoadedAndSessionOk();
}

class CrefFloodTest : public CacheReceiverTest {
 protected:
  void Tune(ReceiverOptions* o) override {
    CacheReceiverTest::Tune(o);
    o->max_buffer = 1 << 20;
    o->max_session_buffer = 4 << 20;
  }
};

// A CREF is 40 bytes on the link and 4 KiB once resolved: 24 records of 5000 CREFs of a
// cached page (470 MiB expanded) against a destination that reads nothing. They are
// counted as pages before they are resolved, so the receiver holds about max_buffer
// and stops reading the link; when the destination reads again, every page arrives.
TEST_F(CrefFloodTest, CrefFloodAgainstAStoppedDestinationStaysBounded) {
  OpenVm();
  Bytes crefs;
  for (int i = 0; i < 5000; ++i) wire::AppendCref(&crefs, 0, 0, KeyOf(Page('c')));
  uint64_t before = RssBytes();
  int sent = 0;
  for (; sent < 24; ++sent) {
    Bytes rec;
    sender_.sealer->Seal(crefs, &rec);
    if (!net::WriteFull(sender_.fd.get(), rec, 1000).ok()) break;
  }
  usleep(300000);  // let the receiver take in whatever the link holds
  uint64_t after = RssBytes(), grown = after > before ? after - before : 0;
  EXPECT_LT(grown, uint64_t{48} << 20) << sent << " records sent";
  RecordProperty("rss_growth_kib", int(grown >> 10));
  auto [got, same] = Drain(qemu_.get(), size_t(sent) * 5000 * 4096, 'c');
  EXPECT_EQ(got, size_t(sent) * 5000 * 4096);
  EXPECT_TRUE(same);
}

TEST_F(CacheReceiverTest, MissingPageIsAskedForAndFilled) {
  OpenVm();
  Bytes f;
  wire::AppendCref(&f, 0, 0, KeyOf(Page('q')));
  wire::AppendData(&f, 0, 0, AsBytes("after"));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kNeed), "");
  Bytes more, fill;
  wire::AppendData(&more, 0, 0, AsBytes("+"));  // sent before the sender saw the NEED
  ASSERT_TRUE(sender_.Send(more).ok());
  wire::AppendFill(&fill, 0, Page('q'));
  wire::AppendChannelEof(&fill, 0, 0);
  ASSERT_TRUE(sender_.Send(fill).ok());
  EXPECT_EQ(DestinationBytesUntilClose(), std::string(4096, 'q') + "after+");
  ExpectLoadedAndSessionOk();
}

TEST_F(CacheReceiverTest, FillThatIsNotTheNamedPageEndsTheSession) {
  OpenVm();
  Bytes f, fill;
  wire::AppendCref(&f, 0, 0, KeyOf(Page('q')));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(sender_.WaitFor(wire::FrameType::kNeed), "");
  wire::AppendFill(&fill, 0, Page('x'));
  ASSERT_TRUE(sender_.Send(fill).ok());
  EXPECT_EQ(ReceiverError(), "FILL for CREF 0 is not the page its key names");
  EXPECT_EQ(DestinationBytesUntilClose(), "");
}

TEST_F(CacheReceiverTest, FillNobodyAskedForEndsTheSession) {
  OpenVm();
  Bytes fill;
  wire::AppendFill(&fill, 5, Page('q'));
  ASSERT_TRUE(sender_.Send(fill).ok());
  EXPECT_EQ(ReceiverError(), "FILL for CREF 5, which the receiver did not ask for");
}

// Without --cache the receiver does not agree to the cache, and refuses its frames.
TEST_F(ReceiverTest, CrefWithoutTheCacheIsRefused) {
  OpenVm();
  Bytes f;
  wire::AppendCref(&f, 0, 0, KeyOf(Page('q')));
  ASSERT_TRUE(sender_.Send(f).ok());
  EXPECT_EQ(ReceiverError(), "sender sent a CREF frame, but the page cache was not negotiated");
}

}  // namespace
}  // namespace gangmig::migrate
