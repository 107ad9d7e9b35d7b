#include "testbed/qemu_vm.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "base/clock.h"
#include "testbed/ram_compare.h"

namespace gangmig::testbed {
namespace {

using nlohmann::json;

std::string MakeTempDir() {
  char tmpl[] = "/tmp/gangmig-vm-XXXXXX";
  return mkdtemp(tmpl) ? tmpl : "";
}

// query-status of `vm`, or the error text, so a failing query fails the comparison.
std::string StatusOf(QemuVm& vm) {
  auto status = vm.QueryStatus();
  return status.ok() ? *status : "error: " + status.status().message();
}

bool ProcessGone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

// Runs QEMU's own migration from `source` to `uri` and waits until it ends. Returns the
// final query-migrate reply.
Result<json> NativeMigrate(QemuVm& source, const std::string& uri, int timeout_ms) {
  qmp::Client& qmp = source.harness();
  auto started = qmp.Execute("migrate", {{"uri", uri}});
  if (!started.ok()) return started.status();
  const int64_t deadline = MonotonicMicros() + int64_t(timeout_ms) * 1000;
  while (MonotonicMicros() < deadline) {
    auto info = qmp.Execute("query-migrate");
    if (!info.ok()) return info.status();
    std::string status = info->value("status", "");
    if (status == "completed" || status == "failed" || status == "cancelled") return info;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Error("migration did not end within " + std::to_string(timeout_ms) + " ms");
}

class TestbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  VmConfig BareConfig(const std::string& name) {
    VmConfig c;
    c.name = name;
    c.workdir = dir_;
    c.mem_mib = 64;
    return c;
  }
  std::string dir_;
};

TEST(TestbedArgvTest, SourceWithKernel) {
  VmConfig c;
  c.name = "web1";
  c.workdir = "/w";
  c.mem_mib = 128;
  c.work_around_tcg_dirty_bug = false;
  c.kernel = "/g/vmlinuz";
  c.initrd = "/g/initrd.img";
  c.seed = 7;
  c.workload_mib = 32;
  c.dirty_rate = 500;
  c.extra_append = "foo=1";
  c.extra_args = {"-d", "guest_errors"};
  std::vector<std::string> expected = {
      "qemu-system-x86_64",
      "-name",
      "web1",
      "-machine",
      "q35,accel=tcg,memory-backend=ram0",
      "-m",
      "128M",
      "-object",
      "memory-backend-file,id=ram0,size=128M,mem-path=/w/web1.ram,share=on",
      "-smp",
      "1",
      "-nodefaults",
      "-display",
      "none",
      "-serial",
      "file:/w/web1.serial",
      "-kernel",
      "/g/vmlinuz",
      "-initrd",
      "/g/initrd.img",
      "-append",
      "console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check gangmig.seed=7 "
      "gangmig.mem_mib=32 gangmig.dirty_rate=500 "
      "foo=1",
      "-qmp",
      "unix:/w/web1.qmp,server=on,wait=off",
      "-qmp",
      "unix:/w/web1.harness.qmp,server=on,wait=off",
      "-d",
      "guest_errors"};
  EXPECT_EQ(QemuArgv(c), expected);
  EXPECT_EQ(RamBytes(c), 128u << 20);

  c.work_around_tcg_dirty_bug = true;  // the default: 8 KiB more
  expected[6] = "131080K";
  expected[8] = "memory-backend-file,id=ram0,size=131080K,mem-path=/w/web1.ram,share=on";
  EXPECT_EQ(QemuArgv(c), expected);
  EXPECT_EQ(RamBytes(c), (128u << 20) + 8192);
  EXPECT_TRUE(VmConfig().work_around_tcg_dirty_bug);
}

TEST(TestbedArgvTest, DestinationIsSourceWithIncomingAndPaused) {
  VmConfig src;
  src.name = "a";
  src.workdir = "/w";
  src.kernel = "/k";
  src.initrd = "/i";
  VmConfig dst = DestinationConfig(src, "a-dst", "unix:/w/a.mig");
  std::vector<std::string> argv = QemuArgv(dst);
  std::vector<std::string> tail(argv.end() - 3, argv.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"-S", "-incoming", "unix:/w/a.mig"}));
  EXPECT_EQ(KernelCommandLine(dst), KernelCommandLine(src));
  EXPECT_EQ(KernelCommandLine(src),
            "console=ttyS0 quiet panic=-1 cryptomgr.notests tsc=reliable no_timer_check "
            "gangmig.seed=1 gangmig.mem_mib=64 "
            "gangmig.dirty_rate=0");
  EXPECT_EQ(argv[2], "a-dst");
}

TEST(TestbedArgvTest, NoKernelMeansNoKernelArgs) {
  VmConfig c;
  c.name = "bare";
  c.workdir = "/w";
  for (const std::string& arg : QemuArgv(c)) {
    EXPECT_NE(arg, "-kernel");
    EXPECT_NE(arg, "-initrd");
    EXPECT_NE(arg, "-append");
    EXPECT_NE(arg, "-S");
  }
}

TEST_F(TestbedTest, BareVmStartsAnswersAndStops) {
  VmConfig c = BareConfig("bare");
  c.start_paused = true;
  QemuVm vm(c);
  Status st = vm.Start();
  ASSERT_TRUE(st.ok()) << st.message();
  pid_t pid = vm.pid();
  ASSERT_GT(pid, 0);
  auto status = vm.QueryStatus();
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(*status, "prelaunch");
  ASSERT_TRUE(vm.harness().Execute("cont").ok());
  EXPECT_EQ(StatusOf(vm), "running");
  EXPECT_TRUE(std::filesystem::exists(vm.qmp_path()));
  EXPECT_EQ(std::filesystem::file_size(vm.ram_path()), RamBytes(c));

  // gangmig's socket is separate from the harness one and usable at the same time.
  auto gangmig = qmp::Client::Connect(vm.qmp_path(), 2000);
  ASSERT_TRUE(gangmig.ok()) << gangmig.status().message();
  EXPECT_EQ((*gangmig->get()->Execute("query-status"))["status"], "running");

  ASSERT_TRUE(vm.Stop().ok());
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_EQ(vm.exit_description(), "exit code 0");
  EXPECT_FALSE(std::filesystem::exists(vm.qmp_path()));
  EXPECT_FALSE(std::filesystem::exists(vm.harness_qmp_path()));
  EXPECT_FALSE(std::filesystem::exists(vm.ram_path()));
  EXPECT_TRUE(vm.Stop().ok());  // idempotent
}

TEST_F(TestbedTest, DestructorStopsAndKeepRamFile) {
  pid_t pid;
  std::string ram;
  {
    VmConfig c = BareConfig("scoped");
    c.start_paused = true;
    c.keep_ram_file = true;
    QemuVm vm(c);
    ASSERT_TRUE(vm.Start().ok());
    pid = vm.pid();
    ram = vm.ram_path();
  }
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_TRUE(std::filesystem::exists(ram));
}

TEST_F(TestbedTest, StopEscalatesToKillWhenQemuIsFrozen) {
  VmConfig c = BareConfig("frozen");
  c.start_paused = true;
  QemuVm vm(c);
  ASSERT_TRUE(vm.Start().ok());
  pid_t pid = vm.pid();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);  // neither quit nor SIGTERM can work now
  int64_t start = MonotonicMicros();
  ASSERT_TRUE(vm.Stop(300).ok());
  EXPECT_LT(MonotonicMicros() - start, 5000000);
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_EQ(vm.exit_description(), "signal 9");
}

TEST_F(TestbedTest, EarlyExitReportsLogTail) {
  VmConfig c = BareConfig("broken");
  c.extra_args = {"-no-such-option"};
  QemuVm vm(c);
  Status st = vm.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("vm broken: QEMU exited during start (exit code 1)"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("-no-such-option: invalid option"), std::string::npos)
      << st.message();
}

// QEMU fails on -incoming only after it has created its QMP sockets.
TEST_F(TestbedTest, EarlyExitAfterSocketsAreCreated) {
  VmConfig c = BareConfig("badincoming");
  c.incoming = "bogus:x";
  QemuVm vm(c);
  int64_t start = MonotonicMicros();
  Status st = vm.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_LT(MonotonicMicros() - start, 3000000);
  EXPECT_NE(st.message().find("QEMU exited during start"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("bogus"), std::string::npos) << st.message();
}

TEST_F(TestbedTest, MissingBinaryAndBadConfig) {
  VmConfig c = BareConfig("nobin");
  c.qemu_binary = "/nonexistent/qemu";
  Status st = QemuVm(c).Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("exec failed: No such file or directory"), std::string::npos)
      << st.message();

  c = BareConfig("nokernel");
  c.kernel = dir_ + "/vmlinuz";
  c.initrd = dir_ + "/initrd.img";
  st = QemuVm(c).Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "vm nokernel: cannot read " + dir_ + "/vmlinuz");

  c = BareConfig("a,b");
  EXPECT_FALSE(QemuVm(c).Start().ok());
}

TEST_F(TestbedTest, WaitForSerialTimesOutWithoutGuest) {
  VmConfig c = BareConfig("quiet");
  QemuVm vm(c);
  ASSERT_TRUE(vm.Start().ok());
  Status st = vm.WaitForSerial("never printed", 300);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no \"never printed\" on the serial console within 300 ms"),
            std::string::npos)
      << st.message();
}

// QEMU's own migration of a firmware-only VM: the launcher's destination setup works
// and the RAM files end identical.
TEST_F(TestbedTest, NativeMigrationWithoutGuestKernel) {
  QemuVm src(BareConfig("src"));
  ASSERT_TRUE(src.Start().ok());
  QemuVm dst(DestinationConfig(src.config(), "dst", "unix:" + dir_ + "/mig.sock"));
  ASSERT_TRUE(dst.Start().ok());
  EXPECT_EQ(StatusOf(dst), "inmigrate");
  // The firmware has written to the source's RAM: the files differ before migrating.
  auto before = CompareRamFiles(src.ram_path(), dst.ram_path());
  ASSERT_TRUE(before.ok()) << before.status().message();
  EXPECT_GT(before->differing_pages, 0u);

  auto info = NativeMigrate(src, "unix:" + dir_ + "/mig.sock", 60000);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ((*info)["status"], "completed") << info->dump();
  EXPECT_EQ(StatusOf(src), "postmigrate");
  // The destination may still be loading for a moment after the source completed.
  std::string dst_status;
  for (int i = 0; i < 100 && (dst_status = StatusOf(dst)) == "inmigrate"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(dst_status, "paused");
  auto after = CompareRamFiles(src.ram_path(), dst.ram_path());
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->bytes_compared, RamBytes(src.config()));
  EXPECT_EQ(after->differing_pages, 0u);
}

// What the session layer sees when nobody listens: `migrate` itself succeeds, the
// failure shows up asynchronously in query-migrate and the source keeps running.
TEST_F(TestbedTest, MigrateToSocketNobodyListensOnFailsAsynchronously) {
  QemuVm src(BareConfig("lonely"));
  ASSERT_TRUE(src.Start().ok());
  auto info = NativeMigrate(src, "unix:" + dir_ + "/nobody.sock", 10000);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ((*info)["status"], "failed");
  EXPECT_EQ((*info)["error-desc"],
            "Failed to connect to '" + dir_ + "/nobody.sock': No such file or directory");
  EXPECT_EQ(StatusOf(src), "running");
}

// Tests that boot the real guest (about 20 s to "ready" under TCG); skipped until
// guest/build-guest.sh has been run.
class TestbedGuestTest : public TestbedTest {
 protected:
  void SetUp() override {
    TestbedTest::SetUp();
    std::filesystem::path fallback = std::filesystem::path(GANGMIG_TESTDATA_DIR) / "../guest/out";
    std::string dir = GuestImage::DirFromEnv(fallback.lexically_normal().string());
    auto image = GuestImage::Locate(dir);
    if (!image.ok()) GTEST_SKIP() << image.status().message();
    image_ = *image;
  }
  VmConfig GuestConfig(const std::string& name) {
    VmConfig c;
    c.name = name;
    c.workdir = dir_;
    c.mem_mib = 256;
    c.workload_mib = 64;
    c.UseImage(image_);
    return c;
  }
  GuestImage image_;
};

// Boots to "ready", then QEMU's own migration to a -S destination: RAM identical.
TEST_F(TestbedGuestTest, NativeMigrationOfBusyGuestKeepsRamIdentical) {
  VmConfig sc = GuestConfig("src");
  sc.dirty_rate = 2000;
  QemuVm src(sc);
  ASSERT_TRUE(src.Start().ok());
  int64_t t0 = MonotonicMicros();
  Status st = src.WaitForSerial(kGuestReadyMarker, 120000);
  ASSERT_TRUE(st.ok()) << st.message();
  int64_t t1 = MonotonicMicros();
  EXPECT_EQ(StatusOf(src), "running");
  QemuVm dst(DestinationConfig(sc, "dst", "unix:" + dir_ + "/mig.sock"));
  ASSERT_TRUE(dst.Start().ok());
  auto info = NativeMigrate(src, "unix:" + dir_ + "/mig.sock", 120000);
  ASSERT_TRUE(info.ok()) << info.status().message();
  ASSERT_EQ((*info)["status"], "completed") << info->dump();
  int64_t t2 = MonotonicMicros();
  std::cout << "boot to ready " << (t1 - t0) / 1000 << " ms, migration " << (t2 - t1) / 1000
            << " ms: " << info->dump() << "\n";
  EXPECT_EQ(StatusOf(src), "postmigrate");
  std::string dst_status;
  for (int i = 0; i < 100 && (dst_status = StatusOf(dst)) == "inmigrate"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(dst_status, "paused");
  auto diff = CompareRamFiles(src.ram_path(), dst.ram_path());
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  EXPECT_EQ(diff->differing_pages, 0u) << "first at " << diff->first_diff_offset;
  auto distinct = CountDistinctNonZeroPages({src.ram_path()});
  ASSERT_TRUE(distinct.ok());
  EXPECT_GT(*distinct, 0u);
}

}  // namespace
}  // namespace gangmig::testbed
