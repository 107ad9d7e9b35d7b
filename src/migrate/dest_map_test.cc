#include "migrate/dest_map.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "net/socket.h"

namespace gangmig::migrate {
namespace {

std::string ParseError(std::string_view text) {
  auto m = DestMap::Parse(text, "map");
  return m.ok() ? "ok" : m.status().message();
}

TEST(DestMap, ParsesEntriesCommentsAndBlankLines) {
  auto m = DestMap::Parse(
      "# NAME ADDRESS [QMP]\n\nweb1 unix:/run/q/web1.in /run/q/web1.qmp  # first\n"
      "  db-2\ttcp:127.0.0.1:4444\n",
      "map");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->entries(), 2u);
  auto web = m->Resolve("web1");
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(web->address, "unix:/run/q/web1.in");
  EXPECT_EQ(web->qmp, "/run/q/web1.qmp");
  auto db = m->Resolve("db-2");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->address, "tcp:127.0.0.1:4444");
  EXPECT_EQ(db->qmp, "");
  EXPECT_EQ(m->Resolve("other").status().message(),
            "receiver has no destination for vm other (not in its --dest-map, and no --dest-dir)");
}

TEST(DestMap, RefusesBadLinesWithTheirNumber) {
  EXPECT_EQ(ParseError("web1\n"), "map:1: expected NAME ADDRESS [QMP-SOCKET], got only 'web1'");
  EXPECT_EQ(ParseError("\nweb1 unix:/a /q extra\n"), "map:2: unexpected 'extra' after QMP-SOCKET");
  EXPECT_EQ(ParseError("../x unix:/a\n"),
            "map:1: VM name '../x' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  EXPECT_EQ(ParseError("a unix:/a q.sock\n"), "map:1: QMP socket 'q.sock' must be an absolute path");
  EXPECT_EQ(ParseError("a unix:/a\na unix:/b\n"), "map:2: VM 'a' is mapped twice");
  EXPECT_NE(ParseError("a nonsense\n"), "ok");
}

class DestDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/gangmig-destdir-" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  net::Fd Socket(const std::string& file) {
    return std::move(net::Listen(*net::ParseAddress("unix:" + dir_ + "/" + file))).value();
  }
  std::string dir_;
};

TEST_F(DestDirTest, NameToSocketAndOptionalQmp) {
  DestMap m;
  m.set_dir(dir_);
  net::Fd in = Socket("vm1.sock");
  auto d = m.Resolve("vm1");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->address, "unix:" + dir_ + "/vm1.sock");
  EXPECT_EQ(d->qmp, "");
  net::Fd qmp = Socket("vm1.qmp");
  EXPECT_EQ(m.Resolve("vm1")->qmp, dir_ + "/vm1.qmp");
  EXPECT_EQ(m.Resolve("vm2").status().message(),
            "receiver has no destination for vm vm2: " + dir_ + "/vm2.sock does not exist (start " +
                "its destination QEMU with -incoming unix:" + dir_ + "/vm2.sock)");
}

// Whoever can write into the directory cannot point a name at another socket (another
// VM's QMP monitor, say) or at a file.
TEST_F(DestDirTest, SymlinksAndFilesAreRefused) {
  DestMap m;
  m.set_dir(dir_);
  net::Fd other = Socket("other.qmp");
  ASSERT_EQ(symlink((dir_ + "/other.qmp").c_str(), (dir_ + "/vm1.sock").c_str()), 0);
  EXPECT_EQ(m.Resolve("vm1").status().message(),
            "receiver has no destination for vm vm1: " + dir_ +
                "/vm1.sock is a symlink (refused: name a socket itself) (start its destination "
                "QEMU with -incoming unix:" + dir_ + "/vm1.sock)");
  std::ofstream(dir_ + "/vm2.sock") << "x";
  EXPECT_NE(m.Resolve("vm2").status().message().find("vm2.sock is not a socket"),
            std::string::npos);
  net::Fd in = Socket("vm3.sock");
  ASSERT_EQ(symlink((dir_ + "/other.qmp").c_str(), (dir_ + "/vm3.qmp").c_str()), 0);
  EXPECT_EQ(m.Resolve("vm3").status().message(),
            "vm vm3: " + dir_ + "/vm3.qmp is a symlink (refused: name a socket itself)");
  EXPECT_EQ(m.Resolve("..").status().message(), "invalid VM name");
}

TEST_F(DestDirTest, MapEntriesComeFirst) {
  auto m = DestMap::Parse("vm1 tcp:127.0.0.1:5000\n", "map");
  ASSERT_TRUE(m.ok());
  m->set_dir(dir_);
  net::Fd in = Socket("vm1.sock");
  EXPECT_EQ(m->Resolve("vm1")->address, "tcp:127.0.0.1:5000");
}

}  // namespace
}  // namespace gangmig::migrate
