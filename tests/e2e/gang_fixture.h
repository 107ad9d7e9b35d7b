// The fixture of the end-to-end scenarios: a work directory in /dev/shm, a key, a
// Scenario of real QEMU guests, a `gangmig receive` child mapping them (--dest-map), and
// helpers to run `gangmig migrate` and check what became of the VMs.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "e2e_util.h"
#include "testbed/ram_compare.h"
#include "testbed/scenario.h"

namespace gangmig::e2e {

using testbed::Scenario;
using testbed::ScenarioConfig;

class GangE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto image = testbed::GuestImage::Locate(testbed::GuestImage::DirFromEnv(GANGMIG_GUEST_DIR));
    ASSERT_TRUE(image.ok()) << image.status().message();
    image_ = *image;
    char tmpl[] = "/dev/shm/gangmig-e2e-XXXXXX";  // guest RAM files in memory, not on disk
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_ = dir_ + "/key";
    Child k = Spawn({GANGMIG_BINARY, "keygen", key_}, dir_ + "/keygen.log");
    ASSERT_EQ(Wait(k, 10000), 0);
  }
  void TearDown() override {
    if (receiver_.pid > 0) Wait(receiver_, 100);
    scenario_.reset();
    std::error_code ec;
    if (!HasFailure()) {
      std::filesystem::remove_all(dir_, ec);
    } else {
      fprintf(stderr, "e2e: kept %s for inspection\n", dir_.c_str());
    }
  }

  ScenarioConfig Config(int vms, int mem_mib) {
    ScenarioConfig c;
    c.vms = vms;
    c.mem_mib = mem_mib;
    c.workload_mib = 24;
    c.dirty_rate = 100;
    c.max_bandwidth = 1LL << 30;
    c.workdir = dir_;
    c.image = image_;
    c.first_port = FreePort();
    c.keep_ram_files = true;  // the work directory is removed on success anyway
    return c;
  }

  void StartScenario(const ScenarioConfig& c) {
    scenario_ = std::make_unique<Scenario>(c);
    Status st = scenario_->Start();
    ASSERT_TRUE(st.ok()) << st.message();
  }

  // The receiver maps the scenario's VMs by a --dest-map file (see also DestDir below).
  void StartReceiver(const std::string& key, const std::vector<std::string>& extra = {}) {
    port_ = FreePort();
    ASSERT_TRUE(scenario_->WriteDestMap(dir_ + "/dest.map").ok());
    std::vector<std::string> argv = {GANGMIG_BINARY, "receive",    "--listen",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--key-file",   key,          "--dest-map",
                                     dir_ + "/dest.map", "--once"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    receiver_ = Spawn(argv, dir_ + "/receiver.log");
    ASSERT_TRUE(WaitForText(dir_ + "/receiver.log", "listening", 10000));
  }

  std::vector<std::string> MigrateArgv(const std::string& key, bool direct = false) {
    std::vector<std::string> argv = {GANGMIG_BINARY, "migrate", "--report", dir_ + "/report.json"};
    if (direct) {
      argv.push_back("--direct");
    } else {
      argv.insert(argv.end(), {"--to", "127.0.0.1:" + std::to_string(port_), "--key-file", key});
    }
    for (const auto& s : scenario_->Specs()) {
      argv.push_back("--vm");
      argv.push_back("name=" + s.name + ",qmp=" + s.qmp +
                     (direct ? ",dest=" + s.dest + ",dest-qmp=" + s.dest_qmp : ""));
    }
    return argv;
  }

  int Migrate(const std::vector<std::string>& argv, int timeout_ms = 300000) {
    Child m = Spawn(argv, dir_ + "/migrate.log");
    return Wait(m, timeout_ms);
  }

  std::string Log(const char* name) { return ReadFile(dir_ + "/" + name); }

  // Runs a gang migration that must succeed and reads its report into *r, every VM
  // checked "completed". Call as ASSERT_NO_FATAL_FAILURE(MigrateCompleted(&r)).
  void MigrateCompleted(nlohmann::json* r) {
    ASSERT_EQ(Migrate(MigrateArgv(key_)), 0) << Log("migrate.log") << Log("receiver.log");
    *r = ReadJson(dir_ + "/report.json");
    for (const auto& vm : (*r)["vms"]) EXPECT_EQ(vm["status"], "completed") << vm.dump();
  }

  void ExpectSourcesRunning() {
    for (auto& vm : scenario_->sources()) {
      auto st = vm->QueryStatus();
      ASSERT_TRUE(st.ok()) << st.status().message();
      EXPECT_EQ(*st, "running") << vm->config().name;
    }
  }

  void ExpectNoDestinationRunning() {
    for (auto& vm : scenario_->destinations()) {
      if (vm->HasExited()) continue;  // QEMU exits when an incoming stream breaks
      auto st = vm->QueryStatus();
      if (st.ok()) {
        EXPECT_NE(*st, "running") << vm->config().name;
      }
    }
  }

  testbed::GuestImage image_;
  std::string dir_, key_;
  int port_ = 0;
  Child receiver_;
  std::unique_ptr<Scenario> scenario_;
  std::function<void()> on_receiver_started_;  // a test's hook, run after StartReceiver
};

}  // namespace gangmig::e2e
