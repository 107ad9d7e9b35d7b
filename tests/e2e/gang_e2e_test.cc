// End-to-end scenarios against real QEMU guests: the gangmig binary is run exactly as a
// user would run it (receive + migrate as separate processes, TCP between them), and the
// outcome is checked on the VMs themselves: RAM byte for byte, run states, QMP status.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "e2e_util.h"
#include "gang_fixture.h"
#include "testbed/ram_compare.h"
#include "testbed/scenario.h"

namespace gangmig::e2e {
namespace {

TEST_F(GangE2E, GangOfThreeArrivesByteForByte) {
  StartScenario(Config(3, 192));
  // Both gangmig processes keep a copy of every stream: what the sources' QEMUs wrote
  // and what the destinations' QEMUs were given.
  std::string tee = dir_ + "/tee";
  std::filesystem::create_directory(tee);
  setenv("GANGMIG_TEE_DIR", tee.c_str(), 1);
  StartReceiver(key_);
  int rc = Migrate(MigrateArgv(key_));
  unsetenv("GANGMIG_TEE_DIR");
  ASSERT_EQ(rc, 0) << Log("migrate.log") << Log("receiver.log");
  EXPECT_EQ(Wait(receiver_, 10000), 0) << Log("receiver.log");
  for (int i = 0; i < 3; ++i) {
    std::string in = ReadFile(tee + "/sender-vm" + std::to_string(i) + "-ch0.bin");
    std::string out = ReadFile(tee + "/receiver-vm" + std::to_string(i) + "-ch0.bin");
    EXPECT_GT(in.size(), 10u << 20);
    EXPECT_TRUE(in == out) << "stream of vm" << i << " changed on the way";
  }
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  ASSERT_FALSE(r.is_discarded());
  ASSERT_EQ(r["vms"].size(), 3u);
  for (const auto& vm : r["vms"]) {
    EXPECT_EQ(vm["status"], "completed") << vm.dump();
    EXPECT_EQ(vm["passthrough_reason"], "") << vm.dump();
    EXPECT_GT(vm["pages_sent"].get<uint64_t>(), 1000u);
    EXPECT_GT(vm["downtime_ms"].get<double>(), 0.0);
  }
  // The guests share their kernel, userland and half of their workload: pages cross once.
  EXPECT_GT(r["total"]["pages_referenced"].get<uint64_t>(),
            r["total"]["pages_sent"].get<uint64_t>() / 4);
  EXPECT_LT(r["total"]["link_bytes"].get<uint64_t>(), r["total"]["stream_bytes"].get<uint64_t>());
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
  for (auto& vm : scenario_->sources()) EXPECT_EQ(*vm->QueryStatus(), "postmigrate");
  for (auto& vm : scenario_->destinations()) EXPECT_EQ(*vm->QueryStatus(), "paused");
}

// Compression and delta forced on for every record, busy guests re-dirtying 3000 pages/s,
// and the sender's copies mostly replaced by SHA-256 digests: the streams still arrive
// byte for byte and the RAM is identical.
TEST_F(GangE2E, BusyGangWithZstdAndDeltaArrivesByteForByte) {
  ScenarioConfig c = Config(3, 192);
  c.dirty_rate = 3000;
  StartScenario(c);
  std::string tee = dir_ + "/tee";
  std::filesystem::create_directory(tee);
  setenv("GANGMIG_TEE_DIR", tee.c_str(), 1);
  StartReceiver(key_);
  std::vector<std::string> argv = MigrateArgv(key_);
  // --page-ram 8: most of the sender's copies leave RAM, and their pages are then proven
  // by SHA-256 (the default: no spill file) while the guests re-dirty them.
  argv.insert(argv.begin() + 2, {"--compress", "zstd", "--delta", "on", "--page-ram", "8"});
  int rc = Migrate(argv);
  unsetenv("GANGMIG_TEE_DIR");
  ASSERT_EQ(rc, 0) << Log("migrate.log") << Log("receiver.log");
  for (int i = 0; i < 3; ++i) {
    std::string in = ReadFile(tee + "/sender-vm" + std::to_string(i) + "-ch0.bin");
    std::string out = ReadFile(tee + "/receiver-vm" + std::to_string(i) + "-ch0.bin");
    EXPECT_TRUE(in == out) << "stream of vm" << i << " changed on the way";
  }
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  const auto& enc = r["extra"]["encoding"];
  EXPECT_EQ(enc["features"], "zstd, delta") << enc.dump();
  EXPECT_GT(enc["zstd_compressed_bodies"].get<uint64_t>(), 10u) << enc.dump();
  EXPECT_LT(enc["zstd_out_bytes"].get<uint64_t>(), enc["zstd_raw_bytes"].get<uint64_t>());
  EXPECT_LT(r["total"]["link_tx_bytes"].get<uint64_t>(), r["total"]["frame_bytes"].get<uint64_t>());
  const auto& idx = r["extra"]["sender_index"];
  EXPECT_EQ(idx["verify_bytes_spilled"], 0u) << idx.dump();
  EXPECT_GT(idx["sha256_pages"].get<uint64_t>(), 10000u) << idx.dump();
  EXPECT_GT(r["total"]["pages_referenced"].get<uint64_t>(), 0u) << r["total"].dump();
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
}

// Both ends keep only 4 MiB of pages in RAM (--page-ram 4): nearly every REF, DELTA
// base and equality proof reads its page back from the spill files, while busy guests
// re-dirty pages. The streams still arrive byte for byte, the RAM is identical, and the
// spill files leave nothing behind in their directory.
TEST_F(GangE2E, PagesSpilledAtBothEndsArriveByteForByte) {
  ScenarioConfig c = Config(2, 192);
  c.dirty_rate = 3000;
  StartScenario(c);
  std::string tee = dir_ + "/tee", spill = dir_ + "/spill";
  std::filesystem::create_directory(tee);
  std::filesystem::create_directory(spill);
  setenv("GANGMIG_TEE_DIR", tee.c_str(), 1);
  StartReceiver(key_, {"--page-ram", "4", "--spill-dir", spill});
  std::vector<std::string> argv = MigrateArgv(key_);
  argv.insert(argv.begin() + 2, {"--delta", "on", "--page-ram", "4", "--spill-dir", spill});
  int rc = Migrate(argv);
  unsetenv("GANGMIG_TEE_DIR");
  ASSERT_EQ(rc, 0) << Log("migrate.log") << Log("receiver.log");
  EXPECT_EQ(Wait(receiver_, 10000), 0) << Log("receiver.log");
  for (int i = 0; i < 2; ++i) {
    std::string in = ReadFile(tee + "/sender-vm" + std::to_string(i) + "-ch0.bin");
    std::string out = ReadFile(tee + "/receiver-vm" + std::to_string(i) + "-ch0.bin");
    EXPECT_TRUE(in == out) << "stream of vm" << i << " changed on the way";
  }
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  const auto& idx = r["extra"]["sender_index"];
  EXPECT_GT(idx["verify_bytes_spilled"].get<uint64_t>(), uint64_t{16} << 20) << idx.dump();
  EXPECT_LE(idx["verify_bytes_held"].get<uint64_t>(), uint64_t{4} << 20) << idx.dump();
  EXPECT_EQ(idx["copy_errors"], 0u) << idx.dump();
  EXPECT_GT(r["total"]["pages_delta"].get<uint64_t>(), 0u) << r["total"].dump();
  std::smatch m;
  std::string log = Log("receiver.log");
  ASSERT_TRUE(std::regex_search(log, m, std::regex("pages held (\\d+) MiB in RAM, (\\d+) MiB spilled")))
      << log;
  EXPECT_LE(std::stoi(m[1]), 4) << m[0];
  EXPECT_GT(std::stoi(m[2]), 16) << m[0];
  EXPECT_TRUE(std::filesystem::is_empty(spill));
}

// A sender that requires zstd and a receiver that refuses it: the migration is refused
// by name before any source is touched.
TEST_F(GangE2E, RequiredFeatureMissingAtTheReceiverIsRefused) {
  StartScenario(Config(1, 192));
  StartReceiver(key_, {"--disable", "zstd"});
  std::vector<std::string> argv = MigrateArgv(key_);
  argv.insert(argv.begin() + 2, {"--compress", "zstd"});
  EXPECT_EQ(Migrate(argv), 1);
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("the receiver does not support zstd, which this migration requires"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("migration never started, source untouched"), std::string::npos) << log;
  EXPECT_EQ(Wait(receiver_, 10000), 1);
  EXPECT_NE(Log("receiver.log").find("sender aborted: the receiver does not support zstd"),
            std::string::npos)
      << Log("receiver.log");
  ExpectSourcesRunning();
}

TEST_F(GangE2E, ReturnPathIsRelayed) {
  ScenarioConfig c = Config(2, 192);
  c.return_path = true;
  StartScenario(c);
  StartReceiver(key_);
  nlohmann::json r;
  ASSERT_NO_FATAL_FAILURE(MigrateCompleted(&r));
  for (const auto& vm : r["vms"]) {
    // PONG (8 bytes) and SHUT (8 bytes) at least came back through gangmig.
    EXPECT_GE(vm["rp_bytes"].get<uint64_t>(), 16u) << vm.dump();
  }
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
}

TEST_F(GangE2E, ReceiverKilledMidMigrationLeavesSourcesRunning) {
  ScenarioConfig c = Config(3, 192);
  c.max_bandwidth = 3 << 20;  // slow enough that the kill lands mid-stream
  c.dirty_rate = 300;
  StartScenario(c);
  StartReceiver(key_);
  Child m = Spawn(MigrateArgv(key_), dir_ + "/migrate.log");
  ASSERT_TRUE(WaitForText(dir_ + "/receiver.log", "connected to destination", 20000));
  sleep(3);
  ASSERT_TRUE(Running(receiver_)) << "migration ended before the receiver could be killed";
  kill(receiver_.pid, SIGKILL);
  Wait(receiver_, 5000);
  int rc = Wait(m, 120000);
  EXPECT_EQ(rc, 1) << Log("migrate.log");
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("connection to the receiver lost"), std::string::npos) << log;
  for (const auto& s : scenario_->Specs())
    EXPECT_NE(log.find(s.name + ":"), std::string::npos) << log;
  ExpectSourcesRunning();
  ExpectNoDestinationRunning();
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  for (const auto& vm : r["vms"]) {
    EXPECT_EQ(vm["status"], "failed");
    EXPECT_EQ(vm["source_final_state"], "running");
  }
}

TEST_F(GangE2E, InterruptedMigrateRollsBack) {
  ScenarioConfig c = Config(2, 192);
  c.max_bandwidth = 3 << 20;
  StartScenario(c);
  StartReceiver(key_);
  Child m = Spawn(MigrateArgv(key_), dir_ + "/migrate.log");
  ASSERT_TRUE(WaitForText(dir_ + "/receiver.log", "connected to destination", 20000));
  sleep(2);
  ASSERT_TRUE(Running(m)) << "migration ended before it could be interrupted";
  kill(m.pid, SIGINT);  // the operator presses Ctrl-C
  EXPECT_EQ(Wait(m, 60000), 1);
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("interrupted by a signal"), std::string::npos) << log;
  ExpectSourcesRunning();
  ExpectNoDestinationRunning();
}

TEST_F(GangE2E, RunningDestinationsGiveDowntimeToResume) {
  // Destinations without -S resume on their own: downtime is then measured from the
  // source's STOP event to the destination's RESUME event.
  ScenarioConfig c = Config(2, 192);
  c.paused_destinations = false;
  StartScenario(c);
  StartReceiver(key_);
  nlohmann::json r;
  ASSERT_NO_FATAL_FAILURE(MigrateCompleted(&r));
  for (const auto& vm : r["vms"]) {
    EXPECT_EQ(vm["downtime_end"], "resume") << vm.dump();
    EXPECT_GT(vm["dest_resume_us"].get<int64_t>(), vm["stop_us"].get<int64_t>()) << vm.dump();
    EXPECT_GT(vm["downtime_ms"].get<double>(), 0.0) << vm.dump();
  }
  for (auto& vm : scenario_->destinations()) EXPECT_EQ(*vm->QueryStatus(), "running");
}

// Two source hosts evacuate to one destination host at once: two `gangmig migrate`
// processes, one receiver serving both sessions side by side, which finds each VM's
// destination in its --dest-dir by name (the sockets are hard links there, as a
// host's QEMUs would create them). A third sender naming a VM the directory lacks fails
// that VM alone, by name, and leaves its source running.
TEST_F(GangE2E, TwoSendersToOneReceiverWithDestDir) {
  StartScenario(Config(3, 192));
  std::string dests = dir_ + "/dests";
  std::filesystem::create_directory(dests);
  for (int i = 0; i < 2; ++i) {
    auto& d = *scenario_->destinations()[i];
    std::string name = scenario_->sources()[i]->config().name;
    std::string in = d.config().incoming->substr(5);  // "unix:" + path
    ASSERT_EQ(link(in.c_str(), (dests + "/" + name + ".sock").c_str()), 0) << in;
    ASSERT_EQ(link(d.qmp_path().c_str(), (dests + "/" + name + ".qmp").c_str()), 0);
  }
  port_ = FreePort();
  receiver_ = Spawn({GANGMIG_BINARY, "receive", "--listen", "127.0.0.1:" + std::to_string(port_),
                     "--key-file", key_, "--dest-dir", dests},
                    dir_ + "/receiver.log");
  ASSERT_TRUE(WaitForText(dir_ + "/receiver.log", "listening", 10000));
  std::vector<Child> senders;
  for (int i = 0; i < 3; ++i) {
    migrate::VmSpec s = scenario_->GangSpecs()[i];
    senders.push_back(Spawn({GANGMIG_BINARY, "migrate", "--to", "127.0.0.1:" + std::to_string(port_),
                             "--key-file", key_, "--report", dir_ + "/report" + std::to_string(i) +
                             ".json", "--vm", "name=" + s.name + ",qmp=" + s.qmp},
                            dir_ + "/migrate" + std::to_string(i) + ".log"));
  }
  for (int i = 0; i < 3; ++i) {
    std::string log = dir_ + "/migrate" + std::to_string(i) + ".log";
    EXPECT_EQ(Wait(senders[i], 300000), i < 2 ? 0 : 1) << ReadFile(log) << Log("receiver.log");
  }
  EXPECT_NE(ReadFile(dir_ + "/migrate2.log")
                .find("vm3: destination: receiver has no destination for vm vm3: " + dests +
                      "/vm3.sock does not exist"),
            std::string::npos)
      << ReadFile(dir_ + "/migrate2.log");
  // Both sessions ran at the same time: each one's start is logged before either ends.
  std::string rlog = Log("receiver.log");
  size_t second_start = rlog.find("session from", rlog.find("session from") + 1);
  ASSERT_NE(second_start, std::string::npos) << rlog;
  EXPECT_LT(second_start, rlog.find("session finished")) << rlog;
  kill(receiver_.pid, SIGTERM);
  Wait(receiver_, 10000);
  for (int i = 0; i < 2; ++i) {
    auto d = testbed::CompareRamFiles(scenario_->sources()[i]->ram_path(),
                             scenario_->destinations()[i]->ram_path());
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ(d->differing_pages, 0u) << "vm" << i + 1;
  }
  EXPECT_EQ(*scenario_->sources()[2]->QueryStatus(), "running");
  EXPECT_EQ(*scenario_->destinations()[2]->QueryStatus(), "inmigrate");
}

// With --cache, every distinct page content the receiver was sent (PAGE frames and
// DELTA results) ends up in its page cache on disk, named by SHA-256, and `gangmig cache
// stat` shows them.
TEST_F(GangE2E, ReceiverCacheKeepsEveryDistinctPage) {
  StartScenario(Config(2, 192));
  std::string cache = dir_ + "/cache";
  StartReceiver(key_, {"--cache", cache});
  nlohmann::json r;
  ASSERT_NO_FATAL_FAILURE(MigrateCompleted(&r));
  EXPECT_EQ(Wait(receiver_, 30000), 0) << Log("receiver.log");
  uint64_t distinct =
      r["total"]["pages_sent"].get<uint64_t>() + r["total"]["pages_delta"].get<uint64_t>();
  Child stat = Spawn({GANGMIG_BINARY, "cache", "stat", cache}, dir_ + "/stat.log");
  ASSERT_EQ(Wait(stat, 30000), 0) << Log("stat.log");
  EXPECT_NE(Log("stat.log").find("entries   " + std::to_string(distinct) + " pages"),
            std::string::npos)
      << Log("stat.log") << " expected " << distinct;
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
}

// Two gangs of fresh VMs of the same image, one after the other, to one receiver with a
// page cache, restarted between them: the second gang's pages that the first one left in
// the cache cross as 36-byte CREFs instead of 4 KiB, its link bytes drop, and every
// destination's RAM is identical to its source's -- also with bytes of the cache flipped
// on disk under the running receiver.
TEST_F(GangE2E, SecondGangFindsItsPagesInTheReceiversCache) {
  std::string cache = dir_ + "/cache";
  auto gang = [&](int first_seed, nlohmann::json* r) {
    ScenarioConfig c = Config(2, 192);
    c.first_seed = first_seed;
    StartScenario(c);
    StartReceiver(key_, {"--cache", cache});
    if (on_receiver_started_) {
      ASSERT_NO_FATAL_FAILURE(on_receiver_started_());
    }
    ASSERT_NO_FATAL_FAILURE(MigrateCompleted(r));
    EXPECT_EQ(Wait(receiver_, 30000), 0) << Log("receiver.log");
    Status ram = scenario_->CheckRamIdentical();
    EXPECT_TRUE(ram.ok()) << ram.message();
    scenario_.reset();
  };
  nlohmann::json first, second;
  ASSERT_NO_FATAL_FAILURE(gang(1, &first));
  // Bit rot after the second receiver has indexed the cache: one byte of every 16th
  // entry's page flipped on disk. Those entries are caught when read (their check
  // fails), asked for again, and the RAM is still identical.
  on_receiver_started_ = [&] {
    for (const auto& seg : std::filesystem::directory_iterator(cache)) {
      if (seg.path().extension() != ".pages") continue;
      int fd = open(seg.path().c_str(), O_RDWR);
      ASSERT_GE(fd, 0);
      constexpr off_t kEntry = 4148, kPageAt = 52;
      for (off_t e = 0; (e + 1) * kEntry <= off_t(seg.file_size()); e += 16) {
        uint8_t b;
        ASSERT_EQ(pread(fd, &b, 1, e * kEntry + kPageAt + 100), 1);
        b ^= 0x5a;
        ASSERT_EQ(pwrite(fd, &b, 1, e * kEntry + kPageAt + 100), 1);
      }
      close(fd);
    }
  };
  ASSERT_NO_FATAL_FAILURE(gang(11, &second));  // other per-VM data, same image and kernel
  uint64_t link1 = first["total"]["link_bytes"], link2 = second["total"]["link_bytes"];
  EXPECT_EQ(first["total"]["pages_cached"], 0u);
  EXPECT_GT(second["total"]["pages_cached"].get<uint64_t>(), 5000u) << second["total"].dump();
  EXPECT_LT(link2, link1 * 8 / 10) << link1 << " then " << link2;
  EXPECT_GT(second["extra"]["dest_cache"]["summary_bytes"].get<uint64_t>(), 0u);
  std::smatch m;
  std::string log = Log("receiver.log");
  ASSERT_TRUE(std::regex_search(log, m, std::regex("(\\d+) damaged entries found and dropped"))) << log;
  EXPECT_GT(std::stoi(m[1]), 0) << m[0];
  RecordProperty("first_link_bytes", std::to_string(link1));
  RecordProperty("second_link_bytes", std::to_string(link2));
}

// There and back: the sender keeps what it sends in its host's cache (migrate --cache);
// the gang runs at the destination for a while (its workload re-dirtying pages), then
// migrates back to a receiver on the first host with that same cache: most pages are
// still there and need not cross again. RAM identical both ways.
TEST_F(GangE2E, GangMigratingBackFindsItsPagesInTheFirstHostsCache) {
  std::string here = dir_ + "/cache-a", there = dir_ + "/cache-b";
  ScenarioConfig c = Config(2, 192);
  c.dirty_rate = 500;
  StartScenario(c);
  StartReceiver(key_, {"--cache", there});
  std::vector<std::string> out = MigrateArgv(key_);
  out.insert(out.begin() + 2, {"--cache", here});
  ASSERT_EQ(Migrate(out), 0) << Log("migrate.log") << Log("receiver.log");
  EXPECT_EQ(Wait(receiver_, 30000), 0) << Log("receiver.log");
  nlohmann::json first = ReadJson(dir_ + "/report.json");
  EXPECT_GT(first["extra"]["source_cache"]["pages_offered"].get<uint64_t>(), 10000u)
      << first["extra"].dump();
  Status ram = scenario_->CheckRamIdentical();
  ASSERT_TRUE(ram.ok()) << ram.message();

  ASSERT_TRUE(scenario_->TurnAround().ok());
  sleep(3);  // the gang runs at the destination
  StartReceiver(key_, {"--cache", here});
  nlohmann::json back;
  ASSERT_NO_FATAL_FAILURE(MigrateCompleted(&back));
  EXPECT_EQ(Wait(receiver_, 30000), 0) << Log("receiver.log");
  ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
  uint64_t link1 = first["total"]["link_bytes"], link2 = back["total"]["link_bytes"];
  EXPECT_GT(back["total"]["pages_cached"].get<uint64_t>(), 20000u) << back["total"].dump();
  EXPECT_LT(link2, link1 / 2) << link1 << " out, " << link2 << " back";
  RecordProperty("out_link_bytes", std::to_string(link1));
  RecordProperty("back_link_bytes", std::to_string(link2));
}

TEST_F(GangE2E, WrongKeyIsRefusedAndNothingStarts) {
  StartScenario(Config(1, 192));
  std::string other = dir_ + "/other.key";
  Child k = Spawn({GANGMIG_BINARY, "keygen", other}, dir_ + "/keygen2.log");
  ASSERT_EQ(Wait(k, 10000), 0);
  StartReceiver(other);
  EXPECT_EQ(Migrate(MigrateArgv(key_), 60000), 1);
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("handshake: the receiver does not know the shared key (proof mismatch)"),
            std::string::npos)
      << log;
  // The sender hangs up once proof_s fails; the receiver logs the refusal with the address.
  EXPECT_TRUE(WaitForText(dir_ + "/receiver.log", "refused 127.0.0.1: peer closed", 5000))
      << Log("receiver.log");
  ExpectSourcesRunning();
  auto mig = scenario_->sources()[0]->harness().Execute("query-migrate");
  ASSERT_TRUE(mig.ok());
  EXPECT_FALSE(mig->contains("status")) << mig->dump();  // no migration was ever started
  EXPECT_EQ(*scenario_->destinations()[0]->QueryStatus(), "inmigrate");
}

TEST_F(GangE2E, UnreachableDestinationFailsBeforeAnythingStarts) {
  StartScenario(Config(2, 192));
  StartReceiver(key_);
  // The map is read again for each session: vm2 now goes where nobody listens, and a
  // VM the receiver host does not know at all is refused by name.
  auto specs = scenario_->Specs();
  std::ofstream(dir_ + "/dest.map") << "vm1 " << specs[0].dest << " " << specs[0].dest_qmp
                                    << "\nvm2 unix:" << dir_ << "/nobody.sock\n";
  std::vector<std::string> argv = MigrateArgv(key_);
  EXPECT_EQ(Migrate(argv, 60000), 1);
  std::string log = Log("migrate.log");
  EXPECT_NE(
      log.find("vm2: destination: destination QEMU: connect to unix:" + dir_ + "/nobody.sock"),
      std::string::npos)
      << log;
  ExpectSourcesRunning();
}

TEST_F(GangE2E, DestinationRejectingTheStreamAfterSourceCompletedResumesSource) {
  // The source has a device the destination lacks: QEMU on the destination rejects the
  // device state after all RAM arrived. Without a return path the source QEMU has
  // already declared success and stopped the VM; gangmig must notice and `cont` it.
  ScenarioConfig c = Config(2, 192);
  c.source_only_args = {"-device", "virtio-rng-pci"};
  StartScenario(c);
  StartReceiver(key_);
  EXPECT_EQ(Migrate(MigrateArgv(key_)), 1) << Log("migrate.log");
  std::string log = Log("migrate.log");
  EXPECT_NE(log.find("source VM resumed with 'cont'"), std::string::npos) << log;
  ExpectSourcesRunning();
  ExpectNoDestinationRunning();
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  for (const auto& vm : r["vms"]) {
    EXPECT_EQ(vm["status"], "failed");
    EXPECT_NE(vm["error"].get<std::string>().find("destination"), std::string::npos) << vm.dump();
  }
}

// One VM of the gang fails mid-stream (its destination QEMU is killed): that VM's source
// is rolled back and keeps running, while the other VM's migration goes on and
// completes with identical RAM (the rollback runs beside the data path, not in it).
TEST_F(GangE2E, OneVmFailingLeavesTheOthersMigrating) {
  ScenarioConfig c = Config(2, 192);
  c.max_bandwidth = 8 << 20;  // slow enough that the kill lands mid-stream
  StartScenario(c);
  StartReceiver(key_);
  Child m = Spawn(MigrateArgv(key_), dir_ + "/migrate.log");
  ASSERT_TRUE(WaitForText(dir_ + "/receiver.log", "connected to destination", 20000));
  sleep(2);
  pid_t victim = scenario_->destinations()[0]->pid();
  ASSERT_GT(victim, 0);
  kill(victim, SIGKILL);
  EXPECT_EQ(Wait(m, 180000), 1) << Log("migrate.log");
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  ASSERT_EQ(r["vms"].size(), 2u);
  EXPECT_EQ(r["vms"][0]["status"], "failed") << r["vms"][0].dump();
  EXPECT_EQ(r["vms"][1]["status"], "completed") << r["vms"][1].dump();
  EXPECT_EQ(*scenario_->sources()[0]->QueryStatus(), "running");
  EXPECT_EQ(*scenario_->sources()[1]->QueryStatus(), "postmigrate");
  auto diff = testbed::CompareRamFiles(scenario_->sources()[1]->ram_path(),
                                       scenario_->destinations()[1]->ram_path());
  ASSERT_TRUE(diff.ok()) << diff.status().message();
  EXPECT_EQ(diff->differing_pages, 0u);
}

TEST_F(GangE2E, MultifdChannelsAreRelayedVerbatim) {
  ScenarioConfig c = Config(2, 192);
  c.capabilities = {"multifd"};
  c.multifd_channels = 2;
  StartScenario(c);
  StartReceiver(key_);
  nlohmann::json r;
  ASSERT_NO_FATAL_FAILURE(MigrateCompleted(&r));
  for (const auto& vm : r["vms"]) {
    EXPECT_NE(vm["passthrough_reason"].get<std::string>().find("verbatim"), std::string::npos)
        << vm.dump();
    EXPECT_GT(vm["passthrough_bytes"].get<uint64_t>(), 10u << 20) << vm.dump();
  }
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
}

TEST_F(GangE2E, DirectBaselineMigratesToo) {
  ScenarioConfig c = Config(2, 192);
  c.tcp_destinations = true;
  StartScenario(c);
  ASSERT_EQ(Migrate(MigrateArgv(key_, /*direct=*/true)), 0) << Log("migrate.log");
  nlohmann::json r = ReadJson(dir_ + "/report.json");
  EXPECT_EQ(r["mode"], "direct");
  for (const auto& vm : r["vms"]) {
    EXPECT_EQ(vm["status"], "completed") << vm.dump();
    EXPECT_GT(vm["link_bytes"].get<uint64_t>(), 1u << 20);
  }
  Status ram = scenario_->CheckRamIdentical();
  EXPECT_TRUE(ram.ok()) << ram.message();
}

}  // namespace
}  // namespace gangmig::e2e
