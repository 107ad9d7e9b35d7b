// The key file as an operator handles it, through the real binary: keygen never
// overwrites or follows a symlink, and migrate/receive refuse a key file others can read
// or a guessable key, saying what to do. No QEMU needed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "e2e_util.h"

namespace gangmig::e2e {
namespace {

class KeyFileE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gangmig-keyfile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)!system(("rm -rf " + dir_).c_str()); }
  int Run(const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> argv = {GANGMIG_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c = Spawn(argv, dir_ + "/" + log);
    return Wait(c, 20000);
  }
  std::string dir_;
};

TEST_F(KeyFileE2E, KeygenMakesAPrivateKeyAndNeverOverwritesOrFollowsLinks) {
  std::string key = dir_ + "/k";
  ASSERT_EQ(Run({"keygen", key}, "1.log"), 0);
  struct stat st;
  ASSERT_EQ(stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string first = ReadFile(key);
  EXPECT_EQ(first.size(), 65u);  // 64 hex digits and a newline

  EXPECT_EQ(Run({"keygen", key}, "2.log"), 1);
  EXPECT_NE(ReadFile(dir_ + "/2.log").find("exists; keeping it (use --force to replace it)"),
            std::string::npos);
  EXPECT_EQ(ReadFile(key), first);

  ASSERT_EQ(Run({"keygen", "--force", key}, "3.log"), 0);
  EXPECT_NE(ReadFile(key), first);

  std::string target = dir_ + "/target", link = dir_ + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(Run({"keygen", "--force", link}, "4.log"), 1);
  EXPECT_NE(ReadFile(dir_ + "/4.log").find("it is a symbolic link"), std::string::npos);
  EXPECT_NE(access(target.c_str(), F_OK), 0);  // nothing written through the link
}

TEST_F(KeyFileE2E, ReceiveRefusesAReadableOrGuessableKeyFile) {
  std::string key = dir_ + "/k";
  ASSERT_EQ(Run({"keygen", key}, "keygen.log"), 0);
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  EXPECT_EQ(Run({"receive", "--listen", "127.0.0.1:0", "--key-file", key, "--once"}, "r1.log"), 2);
  EXPECT_NE(ReadFile(dir_ + "/r1.log").find("readable by others (mode 0644); run `chmod 600"),
            std::string::npos)
      << ReadFile(dir_ + "/r1.log");

  ASSERT_EQ(chmod(key.c_str(), 0600), 0);
  EXPECT_EQ(Run({"receive", "--listen", "127.0.0.1:0", "--key-file", key, "--once"}, "r2.log"), 2);
  EXPECT_NE(ReadFile(dir_ + "/r2.log").find("no destinations: pass --dest-dir DIR"),
            std::string::npos)
      << ReadFile(dir_ + "/r2.log");
  EXPECT_EQ(Run({"receive", "--listen", "127.0.0.1:0", "--key-file", key, "--dest-map",
                 dir_ + "/missing.map"},
                "r3.log"),
            2);
  EXPECT_NE(ReadFile(dir_ + "/r3.log").find("cannot read destination map"), std::string::npos);

  std::string weak = dir_ + "/weak";
  std::ofstream(weak) << "passwordpassword\n";
  ASSERT_EQ(chmod(weak.c_str(), 0600), 0);
  EXPECT_EQ(Run({"migrate", "--to", "127.0.0.1:1", "--key-file", weak, "--vm",
                 "name=a,qmp=/nonexistent"},
                "m1.log"),
            2);
  EXPECT_NE(ReadFile(dir_ + "/m1.log").find("the key looks guessable"), std::string::npos)
      << ReadFile(dir_ + "/m1.log");
}

}  // namespace
}  // namespace gangmig::e2e
