// gangmig with real libvirt on one machine: two libvirtd "hosts" in private mount
// namespaces (scripts/libvirt-hosts.sh), TCG domains from the project's guest image with
// file-backed RAM, `gangmig migrate --libvirt` on host a and `gangmig receive
// --dest-wait` on host b, each run inside its host's mount namespace (nsenter), so that
// /run/gangmig/NAME.sock means each host's own directory, as on two real hosts.
#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
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

std::string NotSocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return "does not exist";
  return S_ISSOCK(st.st_mode) ? "" : "not a socket";
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
    // A test named ...DiskCopy... gives vm1 a local disk (32 MiB, half of it random).
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const bool disk = name.find("DiskCopy") != std::string::npos;
    for (int i = 1; i <= 3; ++i) {
      // Workloads that fill their memory and then stop writing: libvirt rounds RAM to
      // whole MiB, which puts QEMU 7.2 under TCG on its sync path that loses guest
      // writes during migration (docs/DESIGN.md); seen here as 7 differing pages in one
      // of two runs with a busy guest, as with plain virsh migrate in issue 12's notes.
      auto d = Sh(std::string(disk && i == 1 ? "DISK_MIB=32 " : "") + kScript + " define " + base_ +
                  " a vm" + std::to_string(i) + " 192 " + std::to_string(i) + " " + GANGMIG_GUEST_DIR + " 0");
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
  // The receiver on host b, streams to DEST_DIR/NAME.sock there.
  Child StartReceiver(const std::string& dest_dir = "/run/gangmig") {
    Child r = Spawn({"/usr/bin/nsenter", "--mount=" + Ns("b"), GANGMIG_BINARY, "receive", "--listen",
                     "127.0.0.1:" + std::to_string(port_), "--key-file", key_, "--dest-dir",
                     dest_dir, "--dest-wait", "60", "--once"},
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

  // Hard links to each domain's RAM file on a: the source's final RAM, still there once
  // libvirt has removed the source domain.
  void KeepSourceRam(std::vector<std::string>* kept) {
    for (int i = 1; i <= 3; ++i) {
      auto ram = Glob(base_ + "/a/ram/libvirt/qemu/*-vm" + std::to_string(i) + "/*");
      ASSERT_EQ(ram.size(), 1u) << "RAM file of vm" << i;
      kept->push_back(base_ + "/kept-vm" + std::to_string(i) + ".ram");
      ASSERT_EQ(link(ram[0].c_str(), kept->back().c_str()), 0);
    }
  }
  // Each domain's RAM on b equals what `kept` holds, byte for byte.
  void ExpectRamArrived(const std::vector<std::string>& kept) {
    for (int i = 1; i <= 3; ++i) {
      std::string vm = "vm" + std::to_string(i);
      auto ram = Glob(base_ + "/b/ram/libvirt/qemu/*-" + vm + "/*");
      ASSERT_EQ(ram.size(), 1u) << "RAM file of " << vm << " on b";
      auto diff = testbed::CompareRamFiles(kept[i - 1], ram[0]);
      ASSERT_TRUE(diff.ok()) << diff.status().message();
      EXPECT_EQ(diff->differing_pages, 0u) << vm << " first at 0x" << std::hex << diff->first_diff_offset;
    }
  }

  // gangmig proxy on host a for peer b (whose receiver maps names to /run/gangmig/b), its
  // sockets there once it serves all three domains.
  Child StartProxy() {
    std::filesystem::create_directories(base_ + "/b/run/gangmig/b");
    std::filesystem::create_directories(base_ + "/reports");
    Child p = Spawn({"/usr/bin/nsenter", "--mount=" + Ns("a"), GANGMIG_BINARY, "proxy", "--peer",
                     "b=127.0.0.1:" + std::to_string(port_), "--key-file", key_, "--report-dir",
                     base_ + "/reports", "--discover-every", "1", "--linger", "2"},
                    base_ + "/proxy.log");
    EXPECT_TRUE(WaitForText(base_ + "/proxy.log", "ready: 6 sockets", 20000)) << ReadFile(base_ + "/proxy.log");
    return p;
  }
  // `virsh migrate` of vm1..vm3 from `from` to `to`, all started at once, as an
  // orchestrator would run them; each one's exit status and output.
  std::vector<std::pair<int, std::string>> VirshMigrateAll(const char* from, const char* to,
                                                           const std::string& flags,
                                                           const std::string& uri_of) {
    std::vector<Child> runs;
    for (int i = 1; i <= 3; ++i) {
      std::string vm = "vm" + std::to_string(i);
      std::string uri = uri_of.empty() ? "" : " --migrateuri " + uri_of + vm + ".sock";
      runs.push_back(Spawn({"/bin/sh", "-c",
                            "virsh -c '" + Uri(from) + "' migrate --live --p2p " + flags + " " + vm +
                                " '" + Uri(to) + "'" + uri},
                           base_ + "/virsh-" + vm + ".log"));
    }
    std::vector<std::pair<int, std::string>> out;
    for (Child& c : runs) {
      int rc = Wait(c, 300000);
      out.push_back({rc, ReadFile(c.log)});
    }
    return out;
  }
  // libvirt's completed-job figure on `host` ("Data processed", bytes).
  double DataProcessed(const char* host, const std::string& vm) {
    std::string info = Sh("virsh -c '" + Uri(host) + "' domjobinfo --completed " + vm).second;
    size_t at = info.find("Data processed:");
    if (at == std::string::npos) return -1;
    double v = 0;
    char unit[8] = {};
    if (sscanf(info.c_str() + at, "Data processed: %lf %7s", &v, unit) != 2) return -1;
    std::string u(unit);
    return v * (u == "KiB" ? 1024.0 : u == "MiB" ? 1048576.0 : u == "GiB" ? 1073741824.0 : 1.0);
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
  ASSERT_NO_FATAL_FAILURE(KeepSourceRam(&kept));
  Child receiver = StartReceiver();
  Child m = Spawn(MigrateArgv({"--persistent", "--undefinesource", "--suspend"}),
                  base_ + "/migrate.log");
  ASSERT_EQ(Wait(m, 300000), 0) << ReadFile(base_ + "/migrate.log") << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Wait(receiver, 30000), 0) << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Trim(List("a")), "");
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(Trim(Sh("virsh -q -c '" + Uri("b") + "' domstate vm" + std::to_string(i)).second), "paused");
  ExpectRamArrived(kept);
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

// --parallel (multifd): libvirt connects each source QEMU N+1 times to its socket, and the
// destination QEMU takes the first connection as its main channel. gangmig relays the
// extra channels verbatim (and says so), connecting them at the destination in order:
// every domain arrives with its RAM identical. --copy-storage-all at the same time: vm1's
// local disk is copied over NBD through vm1.disks.sock, relayed verbatim as "vm1.disks"
// (the destination's NBD server speaks first); vm2 and vm3 have no disk and open none.
TEST_F(LibvirtE2E, ParallelConnectionsAndDiskCopyAreRelayedVerbatim) {
  std::vector<std::string> kept;
  ASSERT_NO_FATAL_FAILURE(KeepSourceRam(&kept));
  Child receiver = StartReceiver();
  Child m = Spawn(MigrateArgv({"--parallel", "--copy-storage-all", "--persistent", "--undefinesource",
                               "--suspend"}),
                  base_ + "/migrate.log");
  ASSERT_EQ(Wait(m, 300000), 0) << ReadFile(base_ + "/migrate.log") << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Wait(receiver, 30000), 0) << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Trim(List("a")), "");
  ExpectRamArrived(kept);
  nlohmann::json r = nlohmann::json::parse(ReadFile(base_ + "/report.json"), nullptr, false);
  ASSERT_FALSE(r.is_discarded());
  std::vector<std::string> names;
  for (const auto& vm : r["vms"]) {
    names.push_back(vm["name"]);
    EXPECT_EQ(vm["status"], "completed") << vm.dump();
    const char* why = names.back() == "vm1.disks" ? "disk copy (NBD)" : "extra channels";
    EXPECT_NE(vm["passthrough_reason"].get<std::string>().find(why), std::string::npos) << vm.dump();
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"vm1", "vm1.disks", "vm2", "vm3"}));
  auto disk = testbed::CompareRamFiles(base_ + "/a/lib/images/vm1.img", base_ + "/b/lib/images/vm1.img");
  ASSERT_TRUE(disk.ok()) << disk.status().message();
  EXPECT_EQ(disk->differing_pages, 0u) << "vm1's disk, first at 0x" << std::hex << disk->first_diff_offset;
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

// gangmig proxy: an orchestrator runs plain `virsh migrate` for three domains at once,
// each with the proxy's socket as its migration URI. The three streams join one gang
// session; each domain ends on b (paused by --suspend, so RAM can be compared with the
// source's final RAM, then resumed), none on a. The same three `virsh migrate` commands
// without gangmig then bring them back, and their data (libvirt's "Data processed",
// what plain QEMU puts on the link) is more than the proxy's session sent.
TEST_F(LibvirtE2E, ProxyJoinsVirshMigrationsStartedInParallel) {
  std::vector<std::string> kept;
  ASSERT_NO_FATAL_FAILURE(KeepSourceRam(&kept));
  Child receiver = StartReceiver("/run/gangmig/b");
  Child proxy = StartProxy();
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(NotSocket(base_ + "/a/run/gangmig/b/vm" + std::to_string(i) + ".sock"), "") << i;
  auto runs = VirshMigrateAll("a", "b", "--persistent --undefinesource --suspend",
                              "unix:///run/gangmig/b/");
  for (const auto& [rc, out] : runs) EXPECT_EQ(rc, 0) << out << ReadFile(base_ + "/proxy.log");
  EXPECT_EQ(Wait(receiver, 30000), 0) << ReadFile(base_ + "/receiver.log");
  EXPECT_EQ(Trim(List("a")), "");
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(Trim(Sh("virsh -q -c '" + Uri("b") + "' domstate vm" + std::to_string(i)).second), "paused");
  ExpectRamArrived(kept);
  for (int i = 1; i <= 3; ++i) {
    std::string vm = "vm" + std::to_string(i);
    EXPECT_EQ(Sh("virsh -c '" + Uri("b") + "' resume " + vm).first, 0) << vm;
    EXPECT_EQ(Trim(Sh("virsh -q -c '" + Uri("b") + "' domstate " + vm).second), "running") << vm;
  }
  // One session (the three joined it), its report written once it lingered out.
  std::vector<std::string> reports;
  for (int t = 0; t < 100 && reports.empty(); ++t, usleep(100000)) reports = Glob(base_ + "/reports/b-*.json");
  ASSERT_EQ(reports.size(), 1u) << ReadFile(base_ + "/proxy.log");
  nlohmann::json r = nlohmann::json::parse(ReadFile(reports[0]), nullptr, false);
  ASSERT_FALSE(r.is_discarded());
  EXPECT_EQ(r["mode"], "proxy");
  ASSERT_EQ(r["vms"].size(), 3u) << r.dump();
  for (const auto& vm : r["vms"]) EXPECT_EQ(vm["status"], "completed") << vm.dump();
  uint64_t link = r["total"]["link_bytes"], stream = r["total"]["stream_bytes"];
  std::string log = ReadFile(base_ + "/proxy.log");
  EXPECT_NE(log.find("vm vm1: completed"), std::string::npos) << log;
  kill(proxy.pid, SIGTERM);
  EXPECT_EQ(Wait(proxy, 20000), 0) << ReadFile(base_ + "/proxy.log");
  EXPECT_EQ(NotSocket(base_ + "/a/run/gangmig/b/vm1.sock"), "does not exist");

  // The same commands without gangmig, back to a: what plain QEMU sends.
  auto back = VirshMigrateAll("b", "a", "--persistent --undefinesource", "");
  for (const auto& [rc, out] : back) ASSERT_EQ(rc, 0) << out;
  double plain = 0;
  for (int i = 1; i <= 3; ++i) {
    double d = DataProcessed("a", "vm" + std::to_string(i));
    ASSERT_GT(d, 0) << "no completed job on a for vm" << i;
    plain += d;
  }
  EXPECT_LT(double(link), plain * 0.7) << link << " bytes through the proxy against " << plain
                                       << " for plain virsh migrate";
  RecordProperty("proxy_link_bytes", std::to_string(link));
  RecordProperty("proxy_stream_bytes", std::to_string(stream));
  RecordProperty("plain_virsh_data_bytes", std::to_string(uint64_t(plain)));
  fprintf(stderr, "proxy: %.1f MiB on the link for %.1f MiB of streams; plain virsh: %.1f MiB\n",
          double(link) / 1048576, double(stream) / 1048576, plain / 1048576);
}

// The receiver killed in the middle of a proxy session: each `virsh migrate` fails,
// libvirt keeps every domain running on a, none is on b, the proxy logs each VM's
// failure and keeps serving.
TEST_F(LibvirtE2E, ProxyReceiverKilledMidwayLeavesEveryDomainOnTheSource) {
  Child receiver = StartReceiver("/run/gangmig/b");
  Child proxy = StartProxy();
  std::vector<Child> runs;
  for (int i = 1; i <= 3; ++i) {
    std::string vm = "vm" + std::to_string(i);
    runs.push_back(Spawn({"/usr/bin/virsh", "-c", Uri("a"), "migrate", "--live", "--p2p", "--persistent",
                          "--undefinesource", vm, Uri("b"), "--migrateuri",
                          "unix:///run/gangmig/b/" + vm + ".sock"},
                         base_ + "/virsh-" + vm + ".log"));
  }
  ASSERT_TRUE(WaitForText(base_ + "/receiver.log", "connected to destination", 60000))
      << ReadFile(base_ + "/receiver.log");
  kill(receiver.pid, SIGKILL);
  Wait(receiver, 5000);
  for (Child& c : runs) EXPECT_NE(Wait(c, 120000), 0) << ReadFile(c.log);
  for (int i = 1; i <= 3; ++i) {
    std::string vm = "vm" + std::to_string(i);
    EXPECT_EQ(Trim(Sh("virsh -q -c '" + Uri("a") + "' domstate " + vm).second), "running") << vm;
  }
  EXPECT_EQ(Trim(List("b")), "");
  ASSERT_TRUE(WaitForText(base_ + "/proxy.log", "session of", 30000)) << ReadFile(base_ + "/proxy.log");
  std::string log = ReadFile(base_ + "/proxy.log");
  EXPECT_NE(log.find("FAILED"), std::string::npos) << log;
  EXPECT_TRUE(Running(proxy)) << log;  // still serving
  kill(proxy.pid, SIGTERM);
  EXPECT_EQ(Wait(proxy, 20000), 0) << ReadFile(base_ + "/proxy.log");
}

}  // namespace
}  // namespace gangmig::e2e
