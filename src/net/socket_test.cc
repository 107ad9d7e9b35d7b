#include "net/socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

namespace gangmig::net {
namespace {

TEST(SocketTest, ParsesAddresses) {
  auto u = ParseAddress("unix:/run/x.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->kind, Address::Kind::kUnix);
  EXPECT_EQ(u->path, "/run/x.sock");
  auto t = ParseAddress("tcp:127.0.0.1:4444");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 4444);
  auto bare = ParseAddress("[::1]:80");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host, "::1");
  auto bad = ParseAddress("localhost");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "address 'localhost': expected unix:PATH or [tcp:]HOST:PORT");
  EXPECT_FALSE(ParseAddress("h:99999").ok());
}

TEST(SocketTest, TcpLoopbackRoundTrip) {
  auto l = Listen(*ParseAddress("127.0.0.1:0"));
  ASSERT_TRUE(l.ok()) << l.status().message();
  auto port = LocalPort(l->get());
  ASSERT_TRUE(port.ok());
  auto c = Connect(*ParseAddress("127.0.0.1:" + std::to_string(*port)), 1000);
  ASSERT_TRUE(c.ok()) << c.status().message();
  Fd s;
  for (int i = 0; i < 100 && !s.valid(); ++i) {
    auto a = Accept(l->get());
    ASSERT_TRUE(a.ok());
    s = std::move(a).value();
    if (!s.valid()) usleep(1000);
  }
  ASSERT_TRUE(s.valid());
  OutQueue q;
  q.Append(AsBytes("hello"));
  ASSERT_TRUE(q.WriteTo(c->get()).ok());
  EXPECT_TRUE(q.empty());
  uint8_t buf[5];
  ASSERT_TRUE(ReadFull(s.get(), buf, 5, 1000).ok());
  EXPECT_EQ(AsChars(ByteView(buf, 5)), "hello");
}

TEST(SocketTest, ConnectRefusedNamesTheAddress) {
  auto r = Connect(*ParseAddress("unix:/nonexistent/gangmig.sock"), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "connect to unix:/nonexistent/gangmig.sock: No such file or directory");
}

}  // namespace
}  // namespace gangmig::net

namespace gangmig::net {
namespace {

TEST(SocketTest, OutQueueKeepsOrderAcrossChunksAndPartialWrites) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_TRUE(SetNonBlocking(sv[0]).ok());
  Bytes expect;
  OutQueue q;
  for (int i = 0; i < 300; ++i) {
    Bytes piece(size_t(1 + (i * 7919) % 20000), uint8_t(i));
    PutBytes(&expect, piece);
    if (i % 3 == 0) {
      q.AppendOwned(std::move(piece));
    } else {
      q.Append(piece);
    }
  }
  EXPECT_EQ(q.size(), expect.size());
  Bytes got;
  uint8_t buf[65536];
  while (!q.empty()) {
    auto w = q.WriteTo(sv[0]);
    ASSERT_TRUE(w.ok());
    ssize_t n = read(sv[1], buf, sizeof(buf));  // drain a little at a time
    ASSERT_GT(n, 0);
    got.insert(got.end(), buf, buf + n);
  }
  close(sv[0]);
  for (ssize_t n; (n = read(sv[1], buf, sizeof(buf))) > 0;) got.insert(got.end(), buf, buf + n);
  close(sv[1]);
  EXPECT_TRUE(got == expect);
}

// Written chunks come back as spares (emptied, capacity kept) only when asked for, and
// at most as many as asked for; the bytes written are those queued.
TEST(SocketTest, OutQueueHandsBackWrittenChunksAsSpares) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  OutQueue plain;
  plain.AppendOwned(Bytes(1000, 1));
  ASSERT_TRUE(plain.WriteTo(sv[0]).ok());
  EXPECT_EQ(plain.TakeSpare().capacity(), 0u);  // spares not asked for

  OutQueue q;
  q.KeepSpares(1);
  Bytes a(3000, 2), b(2000, 3);
  const uint8_t* a_data = a.data();
  q.AppendOwned(std::move(a));
  q.AppendOwned(std::move(b));
  ASSERT_TRUE(q.WriteTo(sv[0]).ok());
  EXPECT_TRUE(q.empty());
  Bytes spare = q.TakeSpare();
  EXPECT_TRUE(spare.empty());
  EXPECT_EQ(spare.data(), a_data);  // the first written chunk, not a new allocation
  EXPECT_GE(spare.capacity(), 3000u);
  EXPECT_EQ(q.TakeSpare().capacity(), 0u);  // only one kept

  Bytes empty_with_room;
  empty_with_room.reserve(4096);
  const uint8_t* room = empty_with_room.data();
  q.AppendOwned(std::move(empty_with_room));  // nothing to send: kept as the spare
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.TakeSpare().data(), room);

  uint8_t buf[8192];
  size_t got = 0;
  for (ssize_t n; got < 6000 && (n = read(sv[1], buf, sizeof(buf))) > 0;) {
    for (ssize_t i = 0; i < n; i++) {
      uint8_t want = got + size_t(i) < 1000 ? 1 : got + size_t(i) < 4000 ? 2 : 3;
      ASSERT_EQ(buf[i], want) << "byte " << got + size_t(i);
    }
    got += size_t(n);
  }
  EXPECT_EQ(got, 6000u);
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
}  // namespace gangmig::net
