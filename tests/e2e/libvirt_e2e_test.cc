// gangmig with real libvirt on one machine: two libvirtd "hosts" in private mount
// namespaces (scripts/libvirt-hosts.sh), TCG domains from the project's guest image with
// file-backed RAM, `gangmig migrate --libvirt` on host a and `gangmig receive
// --dest-wait` on host b, each run inside its host's mount namespace (nsenter), so that
// /run/gangmig/NAME.sock means each host's own directory, as on two real hosts.
#include <glob.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e_util.h"
#include "testbed/ram_compare.h"

namespace gangmig::e2e {
namespace {

const std::string kScript = std::string(GANGMIG_SOURCE_DIR) + "/scripts/libvirt-hosts.sh";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs a shell command; its exit status and output.
std::pair<int, std::string> Sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::vector<std::string> Glob(const std::string& pattern) {
  glob_t g{};
  std::vector<std::string> out;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

class LibvirtE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Sh("command -v libvirtd && command -v virsh && command -v nsenter").first != 0)
      GTEST_FAIL() << "libvirt is not installed (scripts/setup.sh installs it)";
    char tmpl[] = "/dev/shm/gangmig-libvirt-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    auto started = Sh(kScript + " start " + base_);
    ASSERT_EQ(started.first, 0) << started.second;
    for (int i = 1; i <= 3; ++i) {
      // Workloads that fill their memory and then stop writing: libvirt rounds RAM to
      // whole MiB, which puts QEMU 7.2 under TCG on its sync path that loses guest
      // writes during migration (docs/DESIGN.md); seen here as 7 differing pages in one
      // of two runs with a busy guest, as with plain virsh migrate in issue 12's notes.
      auto d = Sh(kScript + " define " + base_ + " a vm" + std::to_string(i) + " 192 " +
                  std::to_string(i) + " " + GANGMIG_GUEST_DIR + " 0");
      ASSERT_EQ(d.first, 0) << d.second;
    }
    for (int i = 1; i <= 3; ++i)
      ASSERT_TRUE(WaitForText(base_ + "/a/vm" + std::to_string(i) + ".serial",
                              "gangmig-guest: ready", 120000))
          << ReadFile(base_ + "/a/vm" + std::to_string(i) + ".serial");
    key_ = base_ + "/key";
    Child k = Spawn({GANGMIG_BINARY, "keygen", key_}, base_ + "/keygen.log");
    ASSERT_EQ(Wait(k, 10000), 0);
    port_ = 47600 + getpid() % 300;
  }
  void TearDown() override {
    if (base_.empty()) return;
    (void)Sh(kScript + " stop " + base_);
    sleep(1);
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  std::string Uri(const char* host) { return Trim(Sh(kScript + " uri " + base_ + " " + host).second); }
  std::string Ns(const char* host) {
    return "/proc/" + Trim(ReadFile(base_ + "/" + host + "/run/libvirtd.pid")) + "/ns/mnt";
  }
  std::string List(const char* host) {
    return Sh("virsh -c '" + Uri(host) + "' list --all --name").second;
  }
  Child StartReceiver() {
    Child r = Spawn({"/usr/bin/nsenter", "--mount=" + Ns("b"), GANGMIG_BINARY, "receive", "--listen",
                     "127.0.0.1:" + std::to_string(port_), "--key-file", key_, "--dest-dir",
                     "/run/gangmig", "--dest-wait", "60", "--once"},
                    base_ + "/receiver.log");
    EXPECT_TRUE(WaitForText(base_ + "/receiver.log", "listening", 10000));
    return r;
  }
  std::vector<std::string> MigrateArgv(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {"/usr/bin/nsenter", "--mount=" + Ns("a"), GANGMIG_BINARY, "migrate",
                                     "--libvirt", "--dest-uri", Uri("b"), "--to",
                                     "127.0.0.1:" + std::to_string(port_), "--key-file", key_,
                                     "--report", base_ + "/report.json", "--quiet"};
    for (const auto& f : flags) argv.insert(argv.end(), {"--libvirt-flag", f});
    for (int i = 1; i <= 3; ++i) argv.insert(argv.end(), {"--vm", "name=vm" + std::to_string(i)});
    return argv;
  }

  std::string base_, key_;
  int port_ = 0;
};

// Three domains gang-migrate from host a to host b through gangmig: each ends on b (left
// paused with --suspend, so its RAM can be compared with the source's final RAM, kept
// through a hard link when libvirt removed the source), none is left on a, and fewer
// bytes crossed than the streams held.
TEST_F(LibvirtE2E, GangOfDomainsMigratesThroughGangmig) {
  std::vector<std::string> kept;
  for (int i = 1; i <= 3; ++i) {
    auto ram = Glob(base_ + "/a/ram/libvirt/qemu/*-vm" + std::to_string(i) + "/*");
    ASSERT_EQ(ram.size(), 1u) << "RAM file of vm" << i;
    kept.push_back(base_ + "/kept-vm" + std::to_string(i) + ".ram");
    ASSERT_EQ(link(ram[0].c_str(), kept.back().c_str()), 0);
  }
  Child receiver = StartReceiver();
  Child m = Spawn(MigrateArgv({"--persistent", "--undefinesource", "--suspend"}),
                  base_ + "/migrate.log");
  ASSERT_EQ(Wait(m, 300000), 0) << ReadFile(base_ + "/migrate.log") << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Wait(receiver, 30000), 0) << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Trim(List("a")), "");
  for (int i = 1; i <= 3; ++i) {
    std::string vm = "vm" + std::to_string(i);
    EXPECT_EQ(Trim(Sh("virsh -q -c '" + Uri("b") + "' domstate " + vm).second), "paused") << vm;
    auto ram = Glob(base_ + "/b/ram/libvirt/qemu/*-" + vm + "/*");
    ASSERT_EQ(ram.size(), 1u) << "RAM file of " << vm << " on b";
    auto diff = testbed::CompareRamFiles(kept[i - 1], ram[0]);
    ASSERT_TRUE(diff.ok()) << diff.status().message();
    EXPECT_EQ(diff->differing_pages, 0u) << vm << " first at 0x" << std::hex << diff->first_diff_offset;
  }
  nlohmann::json r = nlohmann::json::parse(ReadFile(base_ + "/report.json"), nullptr, false);
  ASSERT_FALSE(r.is_discarded());
  for (const auto& vm : r["vms"]) {
    EXPECT_EQ(vm["status"], "completed") << vm.dump();
    EXPECT_EQ(vm["downtime_end"], "libvirt") << vm.dump();
    EXPECT_GE(vm["downtime_ms"].get<double>(), 0.0) << vm.dump();
  }
  uint64_t link = r["total"]["link_bytes"], stream = r["total"]["stream_bytes"];
  EXPECT_LT(link, stream / 2) << link << " on the link for " << stream << " of streams";
  RecordProperty("link_bytes", std::to_string(link));
  RecordProperty("stream_bytes", std::to_string(stream));
}

// The receiver killed in the middle: libvirt reports every migration failed and rolls it
// back; every domain runs on a, none on b; gangmig says so and exits 1.
TEST_F(LibvirtE2E, ReceiverKilledMidwayLeavesEveryDomainOnTheSource) {
  Child receiver = StartReceiver();
  Child m = Spawn(MigrateArgv({"--persistent", "--undefinesource"}), base_ + "/migrate.log");
  ASSERT_TRUE(WaitForText(base_ + "/receiver.log", "connected to destination", 60000))
      << ReadFile(base_ + "/receiver.log");
  kill(receiver.pid, SIGKILL);
  EXPECT_EQ(Wait(m, 120000), 1) << ReadFile(base_ + "/migrate.log");
  std::string log = ReadFile(base_ + "/migrate.log");
  EXPECT_NE(log.find("connection to the receiver lost"), std::string::npos) << log;
  for (int i = 1; i <= 3; ++i) {
    std::string vm = "vm" + std::to_string(i);
    EXPECT_EQ(Trim(Sh("virsh -q -c '" + Uri("a") + "' domstate " + vm).second), "running") << vm;
  }
  EXPECT_EQ(Trim(List("b")), "");
}

}  // namespace
}  // namespace gangmig::e2e
