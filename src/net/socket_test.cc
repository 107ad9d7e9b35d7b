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

}  // namespace
}  // namespace gangmig::net
