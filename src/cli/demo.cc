// `gangmig demo`: the whole product on one machine. In a private network namespace (so
// the loopback counters hold only this demo's traffic, optionally shaped to a link rate
// with tc tbf) it boots N source guests and N paused destinations, runs `gangmig
// receive` as a child process, gang-migrates all N at once over TCP, checks every
// destination's RAM against its source byte for byte, then does the same with plain QEMU
// (--direct) on fresh VMs and prints both side by side.
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
#include "cli/flags.h"
#include "cli/runs.h"
#include "migrate/direct.h"
#include "migrate/sender.h"
#include "testbed/scenario.h"

namespace gangmig::cli {

const char kDemoHelp[] =
    "usage: gangmig demo [--vms N] [--mem MIB] [--workload MIB] [--dirty-rate PAGES]\n"
    "                    [--link-mbit MBIT] [--guest-dir DIR] [--report FILE.json]\n"
    "                    [--compress auto|zstd|off] [--delta auto|on|off]\n\n"
    "Runs a gang migration and its plain-QEMU baseline on this machine, side by side:\n"
    "  1. boots N source guests (the project's image, guest/build-guest.sh) and N paused\n"
    "     destination VMs, starts `gangmig receive`, migrates all N through gangmig;\n"
    "  2. checks that every destination's RAM equals its source's, byte for byte;\n"
    "  3. repeats on fresh VMs with `gangmig migrate --direct` (QEMU to QEMU over TCP),\n"
    "     then with QEMU's own multifd (2 channels) + zstd, the best QEMU alone can do;\n"
    "  4. prints per VM and in total: time, downtime, bytes on the link, pages.\n"
    "As root it runs in its own network namespace, so bytes on the link are the kernel's\n"
    "loopback counters, and shapes that link to --link-mbit with tc tbf.\n\n"
    "  --vms N            gang size (default 4)\n"
    "  --mem MIB          RAM per VM (default 256; at least the workload + 128)\n"
    "  --workload MIB     memory each guest's workload fills (default 64)\n"
    "  --dirty-rate N     pages/s each guest keeps re-dirtying (default 200)\n"
    "  --link-mbit N      link rate; 0 = unshaped loopback (default 1000)\n"
    "  --guest-dir DIR    guest image (default $GANGMIG_GUEST_DIR or guest/out)\n"
    "  --report FILE      write every run's figures as JSON\n"
    "  --compress, --delta, --dest-window, --verify-copies  passed to gangmig's sender\n"
    "                     (migrate --help)\n"
    "  --threads N        compression threads of both gangmig ends (default one per CPU)\n";

namespace {

constexpr int kGuestOverheadMib = 128;  // guest RAM the image needs besides its workload

struct DemoOptions {
  int vms = 4, mem = 256, workload = 64, dirty_rate = 200, link_mbit = 1000;
  std::string guest_dir, report;
  int64_t dest_window = -1;  // -1: the sender's default
  int64_t verify_copies = -1;  // MiB; -1: the sender's default
  int64_t threads = -1;      // -1: sender's and receiver's default
  EncodingChoice enc{.compression = migrate::SenderOptions{}.compression,
                     .features = migrate::SenderOptions{}.features};
};

// The distinct pages after zstd plus the stream's non-page bytes, as `gangmig bench`'s
// lower_bound_compressed_bytes; 0 when the pages were not measured.
uint64_t CompressedLowerBound(const Run& g) {
  return g.distinct_zstd_bytes ? g.distinct_zstd_bytes + g.stream_nonpage_bytes : 0;
}

void PrintSideBySide(const Run& g, const Run& d) {
  printf("\n%-8s | %-57s | %-45s\n", "", "gangmig (gang)", "plain QEMU (direct)");
  printf("%-8s | %7s %8s %9s %8s %8s %8s | %7s %8s %9s %8s %8s\n", "vm", "time s", "downtime",
         "link MiB", "sent", "dedup", "zero", "time s", "downtime", "link MiB", "sent", "zero");
  auto row = [](const char* name, double t1, double dt1, uint64_t l1, uint64_t s1, uint64_t r1,
                uint64_t z1, double t2, double dt2, uint64_t l2, uint64_t s2, uint64_t z2) {
    printf("%-8s | %7.2f %6.0fms %9.1f %8llu %8llu %8llu | %7.2f %6.0fms %9.1f %8llu %8llu\n", name,
           t1, dt1, l1 / 1048576.0, (unsigned long long)s1, (unsigned long long)r1,
           (unsigned long long)z1, t2, dt2, l2 / 1048576.0, (unsigned long long)s2,
           (unsigned long long)z2);
  };
  uint64_t gl = 0, gs = 0, gr = 0, gz = 0, dl = 0, ds = 0, dz = 0;
  double gdt = 0, ddt = 0;
  for (size_t i = 0; i < g.report.vms.size() && i < d.report.vms.size(); ++i) {
    const auto& a = g.report.vms[i];
    const auto& b = d.report.vms[i];
    row(a.name.c_str(), a.end_to_end_s(), a.downtime_ms(), a.link_bytes, a.pages_sent,
        a.pages_referenced, a.zero_pages, b.end_to_end_s(), b.downtime_ms(), b.link_bytes,
        b.pages_sent, b.zero_pages);
    gl += a.link_bytes, gs += a.pages_sent, gr += a.pages_referenced, gz += a.zero_pages;
    dl += b.link_bytes, ds += b.pages_sent, dz += b.zero_pages;
    gdt = std::max(gdt, a.downtime_ms()), ddt = std::max(ddt, b.downtime_ms());
  }
  row("all", (g.report.end_us - g.report.start_us) / 1e6, gdt, gl, gs, gr, gz,
      (d.report.end_us - d.report.start_us) / 1e6, ddt, dl, ds, dz);
  printf(
      "(all: gang wall time, longest downtime, sums; downtime is source STOP to destination "
      "ready)\n");
  auto total = [](const Run& r) { return (r.report.end_us - r.report.start_us) / 1e6; };
  printf("\ntotal time (first migrate to last destination ready): gang %.2f s, direct %.2f s\n",
         total(g), total(d));
  printf("bytes on the link (kernel counters): gang %.1f MiB, direct %.1f MiB (%.1f%% less)\n",
         g.kernel_link_bytes / 1048576.0, d.kernel_link_bytes / 1048576.0,
         d.kernel_link_bytes ? 100.0 * (1.0 - double(g.kernel_link_bytes) / d.kernel_link_bytes)
                             : 0.0);
  printf("gangmig's own count of link bytes: %.1f MiB sent, %.1f MiB received\n",
         g.report.link_tx_bytes / 1048576.0, g.report.link_rx_bytes / 1048576.0);
  printf(
      "CPU seconds during the migration: gang: gangmig migrate %.2f + receive %.2f, "
      "source QEMUs %.2f, destination QEMUs %.2f; direct: source QEMUs %.2f, "
      "destination QEMUs %.2f\n",
      g.report.cpu_seconds, g.receiver_cpu, g.qemu_src_cpu, g.qemu_dst_cpu, d.qemu_src_cpu,
      d.qemu_dst_cpu);
  printf("distinct non-zero pages over all sources (lower bound): %llu (%.1f MiB)\n",
         (unsigned long long)g.distinct_pages, g.distinct_pages * 4096 / 1048576.0);
  if (uint64_t bound = CompressedLowerBound(g); bound > 0) {
    printf(
        "lower bound after zstd (those pages in 256 KiB pieces, + %.1f MiB non-page stream "
        "bytes): %.1f MiB; gangmig's link bytes are %.2fx of it\n",
        g.stream_nonpage_bytes / 1048576.0, bound / 1048576.0,
        double(g.kernel_link_bytes) / double(bound));
  }
  printf("RAM check: gang: %s; direct: %s\n", g.ram_check.c_str(), d.ram_check.c_str());
}

// The summary a user compares: the three ways on the same link, same guests.
void PrintThreeWays(const Run& g, const Run& d, const Run& m) {
  printf("\n%-24s %9s %17s %10s %9s  %s\n", "way", "total s", "longest downtime", "link MiB",
         "vs plain", "RAM");
  auto line = [&d](const char* name, const Run& r) {
    double worst = 0;
    for (const auto& v : r.report.vms) worst = std::max(worst, v.downtime_ms());
    double vs = d.kernel_link_bytes ? double(r.kernel_link_bytes) / double(d.kernel_link_bytes) : 0;
    printf("%-24s %9.2f %15.0fms %10.1f %8.2fx  %s\n", name,
           (r.report.end_us - r.report.start_us) / 1e6, worst, r.kernel_link_bytes / 1048576.0, vs,
           r.ram_check.c_str());
  };
  line("gangmig", g);
  line("plain QEMU", d);
  line("QEMU multifd(2)+zstd", m);
  const auto* enc = g.report.extra.contains("encoding") ? &g.report.extra["encoding"] : nullptr;
  if (enc != nullptr) {
    printf(
        "gangmig encodings: %s; zstd compressed %llu of %llu records, %.1f -> %.1f MiB "
        "(%.2f CPU-s); %llu pages went as deltas, saving %.1f MiB\n",
        enc->value("features", std::string()).c_str(),
        (unsigned long long)enc->value("zstd_compressed_bodies", 0ull),
        (unsigned long long)enc->value("zstd_bodies", 0ull),
        enc->value("zstd_raw_bytes", 0.0) / 1048576.0,
        enc->value("zstd_out_bytes", 0.0) / 1048576.0, enc->value("zstd_cpu_seconds", 0.0),
        (unsigned long long)enc->value("delta_pages", 0ull),
        enc->value("delta_saved_bytes", 0.0) / 1048576.0);
  }
}

}  // namespace

int RunDemo(const Args& args) {
  DemoOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i + 1 >= args.size()) {
      fprintf(stderr, "gangmig demo: option '%s' needs a value\n\n%s", args[i].c_str(), kDemoHelp);
      return 2;
    }
    const std::string& k = args[i];
    const std::string& v = args[++i];
    if (k == "--vms" || k == "--mem" || k == "--workload" || k == "--dirty-rate" ||
        k == "--link-mbit") {
      auto n = k == "--vms"          ? ParseNumber(k, v, 1, 64)
               : k == "--mem"        ? ParseNumber(k, v, 64, 1 << 20)
               : k == "--workload"   ? ParseNumber(k, v, 0, 1 << 20)
               : k == "--dirty-rate" ? ParseNumber(k, v, 0, 1 << 24)
                                     : ParseNumber(k, v, 0, 1 << 20);
      if (!n.ok()) {
        fprintf(stderr, "gangmig demo: %s\n", n.status().message().c_str());
        return 2;
      }
      int x = int(*n);
      (k == "--vms"          ? o.vms
       : k == "--mem"        ? o.mem
       : k == "--workload"   ? o.workload
       : k == "--dirty-rate" ? o.dirty_rate
                             : o.link_mbit) = x;
    } else if (k == "--compress" || k == "--zstd-level" || k == "--delta") {
      Status st = ApplyEncodingFlag(k, v, &o.enc);
      if (!st.ok()) {
        fprintf(stderr, "gangmig demo: %s\n", st.message().c_str());
        return 2;
      }
    } else if (k == "--dest-window" || k == "--threads" || k == "--verify-copies") {
      auto n = ParseNumber(k, v, 0, k == "--threads" ? 64 : 1 << 24);
      if (!n.ok()) {
        fprintf(stderr, "gangmig demo: %s\n", n.status().message().c_str());
        return 2;
      }
      (k == "--threads" ? o.threads : k == "--verify-copies" ? o.verify_copies : o.dest_window) =
          int64_t(*n);
    } else if (k == "--guest-dir")
      o.guest_dir = v;
    else if (k == "--report")
      o.report = v;
    else {
      fprintf(stderr, "gangmig demo: unknown option '%s'\n\n%s", k.c_str(), kDemoHelp);
      return 2;
    }
  }
  // The guest needs room besides its workload: the kernel and the unpacked initramfs
  // (~70 MiB of the project's image) must fit, or it panics while booting.
  if (o.mem < o.workload + kGuestOverheadMib) {
    fprintf(stderr,
            "gangmig demo: --mem %d is too small for --workload %d: the guest image needs "
            "%d MiB besides its workload (use --mem %d or more, or a smaller --workload)\n",
            o.mem, o.workload, kGuestOverheadMib, o.workload + kGuestOverheadMib);
    return 2;
  }
  auto image = testbed::GuestImage::Locate(o.guest_dir.empty() ? DefaultGuestDir() : o.guest_dir);
  if (!image.ok()) {
    fprintf(stderr, "gangmig demo: %s\n", image.status().message().c_str());
    return 1;
  }
  std::string net = IsolateNetwork(o.link_mbit);
  fprintf(stderr, "gangmig demo: %d VMs x %d MiB, link: %s\n", o.vms, o.mem, net.c_str());
  std::string workdir = MakeWorkdir("gangmig-demo");
  if (workdir.empty()) {
    fprintf(stderr, "gangmig demo: cannot create a work directory in /dev/shm or /tmp\n");
    return 1;
  }
  std::string key_file = workdir + "/key";
  if (RunKeygen({key_file}) != 0) return 1;

  testbed::ScenarioConfig c;
  c.vms = o.vms;
  c.mem_mib = o.mem;
  c.workload_mib = o.workload;
  c.dirty_rate = o.dirty_rate;
  c.max_bandwidth = 10LL << 30;  // the link, not QEMU's throttle, must be the limit
  c.workdir = workdir;
  c.image = *image;
  c.first_port = 47001;
  migrate::SenderOptions tuning;
  tuning.compression = o.enc.compression;
  tuning.features = o.enc.features;
  tuning.required_features = o.enc.required_features;
  if (o.dest_window >= 0) tuning.dest_window_pages = uint64_t(o.dest_window);
  if (o.verify_copies >= 0) tuning.verify_copies = uint64_t(o.verify_copies) << 20;
  tuning.threads = int(o.threads);
  Run gang = RunOnce(Mode::kGang, c, key_file, tuning);
  Run direct, multifd;
  if (!migrate::Interrupted()) direct = RunOnce(Mode::kDirect, c, key_file);
  if (!migrate::Interrupted()) multifd = RunOnce(Mode::kDirectMultifdZstd, c, key_file);
  PrintSideBySide(gang, direct);
  PrintThreeWays(gang, direct, multifd);

  if (!o.report.empty()) {
    nlohmann::json j = {{"link", net},
                        {"gang", gang.report.ToJson()},
                        {"direct", direct.report.ToJson()},
                        {"direct_multifd_zstd", multifd.report.ToJson()}};
    j["direct_multifd_zstd"]["kernel_link_bytes"] = multifd.kernel_link_bytes;
    j["direct_multifd_zstd"]["ram_check"] = multifd.ram_check;
    j["direct_multifd_zstd"]["cpu"] = {{"qemu_sources", multifd.qemu_src_cpu},
                                       {"qemu_destinations", multifd.qemu_dst_cpu}};
    j["gang"]["kernel_link_bytes"] = gang.kernel_link_bytes;
    j["direct"]["kernel_link_bytes"] = direct.kernel_link_bytes;
    j["gang"]["ram_check"] = gang.ram_check;
    j["direct"]["ram_check"] = direct.ram_check;
    j["distinct_nonzero_pages"] = gang.distinct_pages;
    j["distinct_nonzero_pages_zstd_bytes"] = gang.distinct_zstd_bytes;
    j["lower_bound_compressed_bytes"] = CompressedLowerBound(gang);
    if (uint64_t bound = CompressedLowerBound(gang); bound > 0)
      j["gang_link_vs_compressed_lower_bound"] = double(gang.kernel_link_bytes) / double(bound);
    j["gang"]["cpu"] = {{"gangmig_migrate", gang.report.cpu_seconds},
                        {"gangmig_receive", gang.receiver_cpu},
                        {"qemu_sources", gang.qemu_src_cpu},
                        {"qemu_destinations", gang.qemu_dst_cpu}};
    j["direct"]["cpu"] = {{"qemu_sources", direct.qemu_src_cpu},
                          {"qemu_destinations", direct.qemu_dst_cpu}};
    std::ofstream(o.report) << j.dump(2) << "\n";
  }
  std::error_code ec;
  std::filesystem::remove_all(workdir, ec);

  bool ok = true;
  for (const Run* r : {&gang, &direct, &multifd}) {
    if (!r->status.ok()) {
      fprintf(stderr, "gangmig demo: %s run failed: %s\n",
              r == &gang     ? "gang"
              : r == &direct ? "direct"
                             : "multifd+zstd",
              r->status.message().c_str());
      ok = false;
    }
    if (r->ram_check != "identical") ok = false;
  }
  if (ok && gang.kernel_link_bytes >= direct.kernel_link_bytes) {
    fprintf(stderr, "gangmig demo: the gang run did not put fewer bytes on the link\n");
    ok = false;
  }
  printf("\ndemo %s\n",
         ok ? "PASSED: RAM identical for every VM, fewer bytes on the link" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace gangmig::cli
