// The fault matrix (issue 10, item 8; docs/DESIGN.md "Faults"): real QEMU guests, a real
// sender and receiver, and one fault each -- the sender killed, the link stalled (bytes
// dropped, the connection left open) during pre-copy and at switchover, the receiver
// frozen, a destination that stops reading. Every time, each source VM that was not
// migrated runs where it was, no destination runs, and the message says what failed.
// (The receiver killed, a destination killed, Ctrl-C: gang_e2e_test.cc.)
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "e2e_util.h"
#include "gang_fixture.h"

namespace gangmig::e2e {
namespace {

class FaultE2E : public GangE2E {
 protected:
  // A gang that takes a while: the fault lands mid-stream.
  void StartSlowGang(int vms) {
    ScenarioConfig c = Config(vms, 192);
    c.max_bandwidth = 4 << 20;
    c.dirty_rate = 300;
    StartScenario(c);
  }
  // `migrate` through `relay` (or straight to the receiver when null).
  Child StartMigrate(StallingRelay* relay = nullptr) {
    std::vector<std::string> argv = MigrateArgv(key_);
    if (relay)
      for (auto& a : argv)
        if (a == "127.0.0.1:" + std::to_string(port_)) a = "127.0.0.1:" + std::to_string(relay->port());
    Child m = Spawn(argv, dir_ + "/migrate.log");
    EXPECT_TRUE(WaitForText(dir_ + "/receiver.log", "connected to destination", 30000))
        << Log("receiver.log");
    return m;
  }
  // Every VM of the report failed, its source running again.
  void ExpectAllRolledBack() {
    nlohmann::json r = ReadJson(dir_ + "/report.json");
    ASSERT_FALSE(r.is_discarded()) << Log("migrate.log");
    for (const auto& vm : r["vms"]) {
      EXPECT_EQ(vm["status"], "failed") << vm.dump();
      EXPECT_EQ(vm["source_final_state"], "running") << vm.dump();
    }
    ExpectSourcesRunning();
    ExpectNoDestinationRunning();
  }
  // `m` gave up on a silent receiver (link stalled or receiver stopped) and exited 1.
  void ExpectSenderGaveUpOnSilence(Child& m) {
    EXPECT_EQ(Wait(m, 120000), 1) << Log("migrate.log");
    EXPECT_NE(Log("migrate.log")
                  .find("no data from the receiver for 30 s (link stalled or receiver stopped)"),
              std::string::npos)
        << Log("migrate.log");
  }
  // Two VMs at 8 MiB/s each, migrating for 2 s already when it returns `migrate`.
  Child StartTwoVmGang() {
    ScenarioConfig c = Config(2, 192);
    c.max_bandwidth = 8 << 20;
    StartScenario(c);
    StartReceiver(key_);
    Child m = StartMigrate();
    sleep(2);
    return m;
  }
  // The report says vm1 failed and vm2 completed, and vm2's RAM arrived byte for byte.
  void ExpectVm1FailedVm2Identical() {
    nlohmann::json r = ReadJson(dir_ + "/report.json");
    ASSERT_EQ(r["vms"].size(), 2u);
    EXPECT_EQ(r["vms"][0]["status"], "failed") << r["vms"][0].dump();
    EXPECT_EQ(r["vms"][1]["status"], "completed") << r["vms"][1].dump();
    auto diff = testbed::CompareRamFiles(scenario_->sources()[1]->ram_path(),
                                         scenario_->destinations()[1]->ram_path());
    ASSERT_TRUE(diff.ok()) << diff.status().message();
    EXPECT_EQ(diff->differing_pages, 0u);
  }
  // Waits until some source has stopped for its switchover: QEMU's run state, or a
  // monitor that does not answer within 300 ms (QEMU holds its big lock while it writes
  // the last round; waiting for the answer would wait for the switchover to end).
  bool WaitForSwitchover(int timeout_ms) {
    for (int i = 0; i < timeout_ms / 5; ++i) {
      for (auto& vm : scenario_->sources()) {
        auto st = vm->harness().Execute("query-status", nlohmann::json::object(), 300);
        if (st.ok() && st->value("status", "") != "running") return true;
        if (!st.ok() && st.status().message().find("no reply within") != std::string::npos)
          return true;
      }
      usleep(5000);
    }
    return false;
  }
};

// The sender dies (SIGKILL: no rollback of its own). Each source QEMU sees its migration
// connection close, fails the migration and keeps running; the receiver sees the
// session break and closes every destination's stream, so none can load.
TEST_F(FaultE2E, SenderKilledMidGang) {
  StartSlowGang(3);
  StartReceiver(key_);
  Child m = StartMigrate();
  sleep(2);
  ASSERT_TRUE(Running(m)) << "migration ended before the sender could be killed";
  kill(m.pid, SIGKILL);
  Wait(m, 5000);
  EXPECT_EQ(Wait(receiver_, 30000), 1) << Log("receiver.log");
  EXPECT_NE(Log("receiver.log").find("connection to the sender lost"), std::string::npos)
      << Log("receiver.log");
  for (auto& vm : scenario_->sources()) {
    std::string state;
    for (int i = 0; i < 200 && state != "failed"; ++i) {
      auto mig = vm->harness().Execute("query-migrate");
      state = mig.ok() ? mig->value("status", "") : "";
      if (state != "failed") usleep(50000);
    }
    EXPECT_EQ(state, "failed") << vm->config().name;
  }
  ExpectSourcesRunning();
  ExpectNoDestinationRunning();
}

// The link stops carrying bytes but stays open, during pre-copy. Neither end hears from
// the other: after 30 s the sender gives up and rolls back every VM, and the receiver
// ends the session and closes the destinations' streams.
TEST_F(FaultE2E, LinkStalledDuringPrecopy) {
  StartSlowGang(2);
  StartReceiver(key_);
  StallingRelay relay(port_);
  ASSERT_GT(relay.port(), 0);
  Child m = StartMigrate(&relay);
  sleep(2);
  ASSERT_TRUE(Running(m)) << "migration ended before the link could stall";
  relay.Stall();
  auto t0 = std::chrono::steady_clock::now();
  ExpectSenderGaveUpOnSilence(m);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(waited, 25.0);
  ExpectAllRolledBack();
  EXPECT_EQ(Wait(receiver_, 60000), 1) << Log("receiver.log");
  EXPECT_NE(Log("receiver.log").find("no data from the sender for 30 s"), std::string::npos)
      << Log("receiver.log");
  ExpectNoDestinationRunning();
}

// The same, the moment a source has stopped for its switchover: the source is rolled
// back (migrate_cancel, or `cont` if it already completed), the destination never runs.
// A downtime limit of 20 s makes QEMU stop at once and write all its RAM as the last
// round, far more than the buffers hold: each source blocks writing with its big lock
// held, and its QMP answers nothing until gangmig gives up on the link and closes the
// stream. (A QMP that does not answer must not pass for a lost one: CI once failed that.)
TEST_F(FaultE2E, LinkStalledAtSwitchover) {
  ScenarioConfig c = Config(2, 192);
  c.max_bandwidth = 64 << 20;
  c.parameters["downtime-limit"] = 20000;
  StartScenario(c);
  StartReceiver(key_);
  StallingRelay relay(port_);
  Child m = StartMigrate(&relay);
  ASSERT_TRUE(WaitForSwitchover(120000)) << Log("migrate.log");
  relay.Stall();
  ExpectSenderGaveUpOnSilence(m);
  EXPECT_EQ(Log("migrate.log").find("lost the source QMP"), std::string::npos)
      << Log("migrate.log");
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  for (const auto& vm : r["vms"]) {
    // A VM whose destination confirmed the load before the stall completed; every other
    // one is rolled back and runs on its source.
    if (vm["status"] == "completed") continue;
    EXPECT_EQ(vm["source_final_state"], "running") << vm.dump();
  }
  ExpectNoDestinationRunning();
  Wait(receiver_, 60000);
}

// The receiver is frozen (SIGSTOP), the connection open: the sender rolls back after
// 30 s of silence. When the receiver wakes up, it finds the session gone and closes the
// destinations' streams; none runs.
TEST_F(FaultE2E, ReceiverFrozen) {
  StartSlowGang(2);
  StartReceiver(key_);
  Child m = StartMigrate();
  sleep(2);
  ASSERT_TRUE(Running(m));
  kill(receiver_.pid, SIGSTOP);
  ExpectSenderGaveUpOnSilence(m);
  ExpectAllRolledBack();
  kill(receiver_.pid, SIGCONT);
  EXPECT_EQ(Wait(receiver_, 60000), 1) << Log("receiver.log");
  ExpectNoDestinationRunning();
}

// One destination QEMU stops reading its stream (SIGSTOP): after 30 s the receiver fails
// that VM alone (the sender rolls it back), while the other VM completes byte for byte.
TEST_F(FaultE2E, DestinationStopsReading) {
  Child m = StartTwoVmGang();
  pid_t frozen = scenario_->destinations()[0]->pid();
  ASSERT_GT(frozen, 0);
  kill(frozen, SIGSTOP);
  int rc = Wait(m, 240000);
  kill(frozen, SIGCONT);
  EXPECT_EQ(rc, 1) << Log("migrate.log");
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("vm1: destination: the destination QEMU took none of the"), std::string::npos)
      << log;
  ASSERT_NO_FATAL_FAILURE(ExpectVm1FailedVm2Identical());
  EXPECT_EQ(*scenario_->sources()[0]->QueryStatus(), "running");
  ExpectNoDestinationRunning();
}

// One source QEMU hangs (SIGSTOP): its QMP answers nothing and its stream gives nothing.
// QMP silence alone is no fault (QEMU is silent while it writes its last round), but
// both for 60 s are: that VM fails alone, the other completes byte for byte. Woken up,
// the hung source finds its stream closed, fails the migration and runs on.
TEST_F(FaultE2E, SourceHungFailsAlone) {
  Child m = StartTwoVmGang();
  pid_t hung = scenario_->sources()[0]->pid();
  ASSERT_GT(hung, 0);
  kill(hung, SIGSTOP);
  auto t0 = std::chrono::steady_clock::now();
  int rc = Wait(m, 240000);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  kill(hung, SIGCONT);
  EXPECT_EQ(rc, 1) << Log("migrate.log");
  EXPECT_GE(waited, 55.0);
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("vm1: the source QEMU answered neither QMP nor its migration stream for "
                     "60 s"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("the source QEMU still does not answer QMP"), std::string::npos) << log;
  ASSERT_NO_FATAL_FAILURE(ExpectVm1FailedVm2Identical());
  std::string state;
  for (int i = 0; i < 200 && state != "running"; ++i) {
    auto st = scenario_->sources()[0]->QueryStatus();
    state = st.ok() ? *st : st.status().message();
    if (state != "running") usleep(50000);
  }
  EXPECT_EQ(state, "running");
  ExpectNoDestinationRunning();
}

}  // namespace
}  // namespace gangmig::e2e
