#include "cli/runs.h"

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "base/clock.h"
#include "cli/commands.h"
#include "migrate/direct.h"
#include "migrate/sender.h"
#include "testbed/scenario.h"

namespace gangmig::cli {
namespace {

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
double ProcessCpu(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; in >> field && i <= 15; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / double(sysconf(_SC_CLK_TCK));
}

double SumCpu(std::vector<std::unique_ptr<testbed::QemuVm>>& vms) {
  double total = 0;
  for (auto& vm : vms) total += ProcessCpu(vm->pid());
  return total;
}

std::string DefaultGuestDirImpl() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  // build/gangmig -> <source>/guest/out
  std::string guess = exe.parent_path().parent_path().string() + "/guest/out";
  return testbed::GuestImage::DirFromEnv(guess);
}

uint64_t LoopbackTxBytes() {
  std::ifstream f("/proc/self/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != "lo") continue;
    std::istringstream in(line.substr(colon + 1));
    uint64_t v[9] = {};
    for (auto& x : v) in >> x;
    return v[8];  // transmit bytes
  }
  return 0;
}

}  // namespace

Status SetLinkRate(int link_mbit) {
  std::string cmd = "tc qdisc replace dev lo root tbf rate " + std::to_string(link_mbit) +
                    "mbit burst 512kb latency 100ms 2>/dev/null";
  if (link_mbit <= 0 || system(cmd.c_str()) != 0)
    return Status::Error("cannot shape the loopback to " + std::to_string(link_mbit) +
                         " Mbit/s (needs root, tc, and IsolateNetwork first)");
  return Status::Ok();
}

namespace {

// A private network namespace with lo up (and shaped): only this demo's traffic counts.
std::string IsolateNetworkImpl(int link_mbit) {
  if (geteuid() != 0) return "not root: link bytes are gangmig's own socket counts";
  if (unshare(CLONE_NEWNET) != 0) return std::string("unshare: ") + strerror(errno);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  strcpy(ifr.ifr_name, "lo");
  ioctl(s, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags |= IFF_UP;
  int rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  close(s);
  if (rc != 0) return "cannot bring lo up in the namespace";
  std::string shaped = "unshaped loopback";
  if (link_mbit > 0) {
    shaped = SetLinkRate(link_mbit).ok()
                 ? "loopback shaped to " + std::to_string(link_mbit) + " Mbit/s (tc tbf)"
                 : "unshaped loopback (tc not available)";
  }
  return "private network namespace, " + shaped;
}

// `threads` < 0: the receiver's default.
pid_t StartReceiver(const std::string& key_file, int port, const std::string& dest_map,
                    const std::string& log, int threads, const ReceiverSetup& setup) {
  std::vector<std::string> args = {"gangmig",  "receive",  "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--key-file", key_file, "--dest-map", dest_map, "--once"};
  if (threads >= 0) args.insert(args.end(), {"--threads", std::to_string(threads)});
  if (!setup.cache.empty()) args.insert(args.end(), {"--cache", setup.cache});
  for (const std::string& f : setup.seed_from) args.insert(args.end(), {"--seed-from", f});
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  return pid;
}

// Waits for the child (SIGKILL after the timeout); returns its CPU seconds.
double WaitChild(pid_t pid, int timeout_ms, uint64_t* peak_rss_kib) {
  rusage ru{};
  for (int i = 0; i < timeout_ms / 10; ++i) {
    if (wait4(pid, nullptr, WNOHANG, &ru) == pid) {
      *peak_rss_kib = uint64_t(ru.ru_maxrss);
      return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }
    usleep(10000);
  }
  kill(pid, SIGKILL);
  wait4(pid, nullptr, 0, &ru);
  return 0;
}

}  // namespace

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kGang:
      return "gang";
    case Mode::kDirect:
      return "direct";
    case Mode::kDirectMultifdZstd:
      return "direct-multifd-zstd";
  }
  return "?";
}

namespace {

// The scenario's configuration for `mode` (the baselines' destinations listen on TCP;
// multifd+zstd turns on its capability and parameters on both sides).
testbed::ScenarioConfig ConfigFor(Mode mode, testbed::ScenarioConfig c) {
  c.tcp_destinations = mode != Mode::kGang;
  if (mode == Mode::kDirectMultifdZstd) {
    c.capabilities.push_back("multifd");
    c.multifd_channels = 2;
    c.parameters["multifd-compression"] = "zstd";
  }
  return c;
}

// Migrates the started scenario's sources to its destinations in `mode` and measures it.
// `count_distinct`: also measure the sources' distinct pages (gangmig's lower bound).
Run MigrateOnce(Mode mode, testbed::Scenario& sc, const testbed::ScenarioConfig& c,
                const std::string& key_file, const migrate::SenderOptions& tuning,
                const ReceiverSetup& receiver_setup, bool count_distinct) {
  Run run;
  bool gang = mode == Mode::kGang;
  // The compressed bound costs a zstd pass over the distinct pages: only the gang run
  // measures it (bench gives the baselines' rows the gang run's bounds).
  if (count_distinct) {
    testbed::DistinctOptions count{.compress = gang, .zstd_level = tuning.compression.level};
    auto distinct = sc.DistinctNonZeroPages(count);
    if (distinct.ok()) {
      run.distinct_pages = distinct->pages;
      run.distinct_zstd_bytes = distinct->compressed_bytes;
    }
  }
  migrate::SenderOptions opt = tuning;
  opt.vms = gang ? sc.GangSpecs() : sc.Specs();
  opt.timeout_s = 1800;
  pid_t receiver = -1;
  if (gang) {
    int port = c.first_port - 1;
    std::string map = c.workdir + "/dest.map";
    run.status = sc.WriteDestMap(map);
    if (!run.status.ok()) return run;
    receiver = StartReceiver(key_file, port, map, c.workdir + "/receiver.log", tuning.threads,
                             receiver_setup);
    opt.receiver = "127.0.0.1:" + std::to_string(port);
    std::ifstream k(key_file);
    std::string key;
    std::getline(k, key);
    opt.key = Bytes(key.begin(), key.end());
  }
  fprintf(stderr, "== migrating %d VMs at once (%s)...\n", c.vms, ModeName(mode));
  // Reset this process's peak RSS so the report's figure covers the migration only.
  std::ofstream("/proc/self/clear_refs") << "5";
  uint64_t before = LoopbackTxBytes();
  double src_cpu = SumCpu(sc.sources()), dst_cpu = SumCpu(sc.destinations());
  run.status = gang ? migrate::RunGangMigration(opt, &run.report)
                    : migrate::RunDirectMigration(opt, &run.report);
  run.kernel_link_bytes = LoopbackTxBytes() - before;
  // Every page record of the streams, however it crossed (whole, REF, DELTA, CREF): the
  // rest of the stream bytes are headers, zero pages and device state.
  uint64_t paged = 0;
  for (const auto& v : run.report.vms)
    paged += (v.pages_sent + v.pages_referenced + v.pages_delta + v.pages_cached) * 4096;
  uint64_t stream = 0;
  for (const auto& v : run.report.vms) stream += v.stream_bytes;
  if (gang && stream >= paged) run.stream_nonpage_bytes = stream - paged;
  run.qemu_src_cpu = SumCpu(sc.sources()) - src_cpu;
  run.qemu_dst_cpu = SumCpu(sc.destinations()) - dst_cpu;
  if (receiver > 0) {
    run.receiver_cpu = WaitChild(receiver, 10000, &run.receiver_peak_rss_kib);
    // The child's ru_maxrss also counts this process's memory at the fork (Linux folds
    // the forked copy's high-water mark in at exec): the receiver's own VmHWM, which it
    // logs when it ends, is the figure that counts.
    std::ifstream log(c.workdir + "/receiver.log");
    std::string line;
    const std::string kPeak = "gangmig receive: peak memory (VmHWM) ";
    while (std::getline(log, line))
      if (line.rfind(kPeak, 0) == 0) run.receiver_peak_rss_kib = std::stoull(line.substr(kPeak.size()));
  }
  // A failed migration leaves its destinations incomplete (and never resumed): their RAM
  // is not compared, and the run counts as failed either way.
  if (run.status.ok()) {
    Status ram = sc.CheckRamIdentical();
    run.ram_check = ram.ok() ? "identical" : ram.message();
  } else {
    run.ram_check = "not compared: the migration failed";
  }
  return run;
}

}  // namespace

Run RunOnce(Mode mode, testbed::ScenarioConfig config, const std::string& key_file,
            const migrate::SenderOptions& tuning, const ReceiverSetup& receiver_setup) {
  testbed::ScenarioConfig c = ConfigFor(mode, std::move(config));
  testbed::Scenario sc(c);
  fprintf(stderr, "== %s: booting %d source guests and %d paused destinations...\n", ModeName(mode),
          c.vms, c.vms);
  Run run;
  run.status = sc.Start();
  if (!run.status.ok()) return run;
  run = MigrateOnce(mode, sc, c, key_file, tuning, receiver_setup, /*count_distinct=*/true);
  (void)sc.StopAll();
  return run;
}

std::pair<Run, Run> RunThereAndBack(Mode mode, testbed::ScenarioConfig config,
                                    const std::string& key_file, const ReturnSetup& setup) {
  testbed::ScenarioConfig c = ConfigFor(mode, std::move(config));
  testbed::Scenario sc(c);
  fprintf(stderr, "== %s: booting %d source guests and %d paused destinations...\n", ModeName(mode),
          c.vms, c.vms);
  std::pair<Run, Run> runs;
  runs.first.status = sc.Start();
  if (!runs.first.status.ok()) return runs;
  runs.first = MigrateOnce(mode, sc, c, key_file, setup.out_sender, setup.out_receiver, true);
  if (!runs.first.status.ok() || runs.first.ram_check != "identical") {
    runs.second.status = Status::Error("not run: the first migration failed");
    (void)sc.StopAll();
    return runs;
  }
  runs.second.status = sc.TurnAround();
  if (runs.second.status.ok()) {
    fprintf(stderr, "== the VMs run at the destination for %d s...\n", setup.dwell_s);
    sleep(unsigned(setup.dwell_s));
    runs.second = MigrateOnce(mode, sc, c, key_file, setup.back_sender, setup.back_receiver, true);
  }
  (void)sc.StopAll();
  return runs;
}

std::string DefaultGuestDir() { return DefaultGuestDirImpl(); }

namespace {
char g_workdir[256];

// Async-signal-safe: fork + exec rm, then leave with the conventional status.
void RemoveWorkdirAndExit(int sig) {
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/rm", "rm", "-rf", g_workdir, (char*)nullptr);
    _exit(127);
  }
  if (pid > 0) waitpid(pid, nullptr, 0);
  _exit(128 + sig);
}
}  // namespace

std::string MakeWorkdir(const char* prefix) {
  std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm/" : "/tmp/";
  std::string tmpl = base + prefix + "-XXXXXX";
  if (tmpl.size() >= sizeof(g_workdir) || mkdtemp(tmpl.data()) == nullptr) return "";
  memcpy(g_workdir, tmpl.c_str(), tmpl.size() + 1);
  signal(SIGINT, RemoveWorkdirAndExit);
  signal(SIGTERM, RemoveWorkdirAndExit);
  return tmpl;
}
std::string IsolateNetwork(int link_mbit) { return IsolateNetworkImpl(link_mbit); }

}  // namespace gangmig::cli
