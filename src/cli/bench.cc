// `gangmig bench`: the evaluation of the gang-migration paper, on this machine. Each
// scenario migrates the same guests three ways in the same run (gangmig, plain QEMU,
// plain QEMU with multifd+zstd), repeated; every run's raw figures go to
// results/<scenario>/<point>/<mode>-<rep>.json, one line per run to results/runs.csv,
// and medians (min-max) to results/summary.md. bench/plot.py turns runs.csv into PNGs.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "base/ordered_work.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/runs.h"
#include "migrate/report.h"
#include "migrate/sender.h"

namespace gangmig::cli {

const char kBenchHelp[] =
    "usage: gangmig bench [--smoke] [--scenarios LIST] [--reps N] [--link-mbit MBIT]\n"
    "                     [--points LIST] [--out DIR] [--guest-dir DIR]\n"
    "                     [--verify-copies MIB] [--compress auto|zstd|off]\n"
    "                     [--zstd-level N] [--delta auto|on|off] [--dest-window PAGES]\n"
    "                     [--threads N]\n\n"
    "Runs the benchmark scenarios, each point three ways (gang, direct,\n"
    "direct-multifd-zstd) and --reps times, in a private network namespace whose loopback\n"
    "is shaped to --link-mbit (default 1000). Writes DIR (default results/): raw JSON per\n"
    "run, runs.csv, summary.md. Scenarios (default: all but single-size and gang-12):\n"
    "  gang-size    1, 2, 4, 8 VMs of 512 MiB running the same image\n"
    "  hetero       4 VMs of 512 MiB, two guest flavours (std, alt) mixed\n"
    "  control      2 VMs whose workload memory is random (no sharing beyond the OS)\n"
    "  busy         2 VMs re-dirtying 0, 2000, 8000 pages/s during migration\n"
    "  link-rate    4 VMs of 512 MiB on a 100 and a 300 Mbit/s link (the link re-shaped)\n"
    "  single-size  1 VM of 1, 2, 4, 8 GiB with half its memory filled\n"
    "  single-dup   1 VM of 1 GiB holding 6 more copies of its userland (as containers\n"
    "               that unpacked the same image): duplicates inside one VM\n"
    "  gang-12      12 VMs of 512 MiB (reported as gang-size point 12)\n"
    "  second-batch 4 VMs of 512 MiB to a receiver with a page cache that a first gang of\n"
    "               4 fresh VMs of the same image (other per-VM data) filled: row\n"
    "               `first` is that gang, the three ways run on the second\n"
    "  neighbours   4 VMs of 512 MiB while 2 VMs of the same image (other per-VM data)\n"
    "               run on the destination host: rows `nocache` and `unseeded` are\n"
    "               gangmig without and with an empty cache; row `seeded` the three\n"
    "               ways, gangmig's receiver seeding its cache from the neighbours'\n"
    "               RAM (receive --seed-from)\n"
    "  return       4 VMs of 512 MiB migrate (gangmig's sender keeping what it sends in\n"
    "               its host's cache: migrate --cache), run 60 s at the destination, and\n"
    "               migrate back to a receiver on the first host with that cache: rows\n"
    "               `out` and `back`, three ways each\n"
    "  --smoke      one point (2 VMs of 192 MiB), one repetition: a quick check\n"
    "--points LIST keeps only the points named (e.g. --scenarios single-size --points 8G).\n"
    "--verify-copies MIB is passed to gangmig's sender (default 1024; 0 proves every\n"
    "page with SHA-256 and keeps no copies, e.g. for VMs that fill this host's memory).\n"
    "--compress, --zstd-level, --delta, --dest-window, --threads are passed to gangmig's\n"
    "sender (see migrate --help).\n";

namespace {

struct Point {
  std::string scenario, label;
  testbed::ScenarioConfig config;
  int link_mbit = 0;  // 0: the bench's --link-mbit
  // The gang run's receiver keeps a page cache, warmed first by a gang of the same image
  // with other per-VM data (seeds 1..n; the measured gang has seeds 11..): its row
  // "first" is that warm-up, the three ways are measured on the second gang.
  bool warm_cache = false;
  // This many VMs of the same image (other per-VM data) run on the destination host
  // beside the gang; the gang's receiver seeds its (empty) cache from their RAM. Rows:
  // "nocache" (gang, no cache), "unseeded" (gang, an empty cache: what a cold cache
  // costs) and "seeded" (the three ways).
  int neighbours = 0;
  // There and back: the gang migrates (gangmig's sender keeping what it sends in the
  // source host's cache), runs return_dwell_s at the destination, and migrates back to
  // a receiver on the first host with that cache. Rows "out" and "back", three ways.
  int return_dwell_s = 0;
};

std::vector<Point> Points(const std::string& list, bool smoke,
                          const std::optional<testbed::GuestImage>& alt) {
  std::vector<Point> pts;
  auto want = [&](const char* s) { return list.find(s) != std::string::npos; };
  auto base = [](int vms, int mem, int workload) {
    testbed::ScenarioConfig c;
    c.vms = vms;
    c.mem_mib = mem;
    c.workload_mib = workload;
    c.dirty_rate = 200;
    c.max_bandwidth = 10LL << 30;
    c.boot_timeout_ms = 600000;
    return c;
  };
  if (smoke) {
    pts.push_back({"smoke", "2x192", base(2, 192, 24)});
    return pts;
  }
  if (want("gang-size"))
    for (int n : {1, 2, 4, 8}) pts.push_back({"gang-size", std::to_string(n), base(n, 512, 128)});
  if (want("gang-12")) pts.push_back({"gang-size", "12", base(12, 512, 128)});
  if (want("hetero") && alt) {
    Point p{"hetero", "std+alt", base(4, 512, 128)};
    p.config.alt_image = alt;
    pts.push_back(p);
  }
  if (want("control")) {
    Point p{"control", "random", base(2, 512, 256)};
    p.config.extra_append = "gangmig.shared_pct=0";
    pts.push_back(p);
  }
  if (want("busy"))
    for (int r : {0, 2000, 8000}) {
      Point p{"busy", std::to_string(r), base(2, 512, 128)};
      p.config.dirty_rate = r;
      pts.push_back(p);
    }
  if (want("link-rate"))
    for (int mbit : {100, 300})
      pts.push_back({"link-rate", std::to_string(mbit), base(4, 512, 128), mbit});
  if (want("single-dup")) {
    // One VM holding duplicates inside itself: 6 more copies of its userland (gangmig.copies).
    Point p{"single-dup", "1Gx6", base(1, 1024, 256)};
    p.config.extra_append = "gangmig.copies=6";
    pts.push_back(p);
  }
  if (want("second-batch")) {
    Point p{"second-batch", "4x512", base(4, 512, 128)};
    p.config.first_seed = 11;
    p.warm_cache = true;
    pts.push_back(p);
  }
  if (want("neighbours")) {
    Point p{"neighbours", "4x512", base(4, 512, 128)};
    p.config.first_seed = 11;
    p.neighbours = 2;
    pts.push_back(p);
  }
  if (want("return")) {
    Point p{"return", "4x512", base(4, 512, 128)};
    p.return_dwell_s = 60;
    pts.push_back(p);
  }
  if (want("single-size"))
    for (int g : {1, 2, 4, 8})
      pts.push_back({"single-size", std::to_string(g) + "G", base(1, g << 10, g << 9)});
  return pts;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Row {
  std::string scenario, label, mode;
  int rep = 0, link_mbit = 0;
  double time_s = 0, downtime_ms = 0, cpu_gangmig = 0, cpu_qemu = 0;
  uint64_t link_kernel = 0, link_own = 0, sent = 0, ref = 0, zero = 0, lower_bound = 0,
           rss_send = 0, rss_recv = 0;
  uint64_t lower_bound_z = 0;  // the lower bound with its pages compressed as gangmig does
  uint64_t delta = 0, cached = 0;  // pages sent as DELTA, named by CREF
  std::string ram;
  bool ok = false;
};

// runs.csv's ram column: identical, differs, or not-compared (RunOnce compares RAM only
// after a migration that succeeded).
const char* RamColumn(const Row& r) {
  if (!r.ok) return "not-compared";
  return r.ram == "identical" ? "identical" : "differs";
}

std::string Csv(const Row& r) {
  std::ostringstream o;
  o << r.scenario << "," << r.label << "," << r.mode << "," << r.rep << "," << r.time_s << ","
    << r.downtime_ms << "," << r.link_kernel << "," << r.link_own << "," << r.sent << "," << r.ref
    << "," << r.zero << "," << r.lower_bound << "," << r.cpu_gangmig << "," << r.cpu_qemu << ","
    << r.rss_send << "," << r.rss_recv << "," << (r.ok ? "ok" : "failed") << "," << RamColumn(r)
    << "," << r.link_mbit << "," << r.lower_bound_z << "," << r.delta << "," << r.cached;
  return o.str();
}

void WriteSummary(const std::vector<Row>& rows, const std::string& path, const std::string& link) {
  std::map<std::string, std::vector<const Row*>> groups;
  std::vector<std::string> order;
  for (const Row& r : rows) {
    std::string k = r.scenario + "|" + r.label + "|" + r.mode;
    if (!groups.count(k)) order.push_back(k);
    groups[k].push_back(&r);
  }
  std::ofstream md(path);
  md << "Link: " << link << " (scenario link-rate re-shapes it per point). "
     << "Median (min-max) over repetitions.\n\n"
     << "| scenario | point | mode | runs ok | total time s | max downtime ms | link MiB | "
        "gangmig CPU s | QEMU CPU s | lower bound MiB (time s) | lower bound after zstd MiB |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string& k : order) {
    auto& g = groups[k];
    std::vector<double> t, d, l, cg, cq, lb, lbz;
    int ok = 0;
    for (const Row* r : g) {
      if (!r->ok || r->ram != "identical") continue;
      ++ok;
      t.push_back(r->time_s), d.push_back(r->downtime_ms), l.push_back(r->link_kernel / 1048576.0);
      cg.push_back(r->cpu_gangmig), cq.push_back(r->cpu_qemu),
          lb.push_back(r->lower_bound / 1048576.0), lbz.push_back(r->lower_bound_z / 1048576.0);
    }
    auto cell = [](const std::vector<double>& v, int prec) {
      if (v.empty()) return std::string("-");
      char b[96];
      snprintf(b, sizeof(b), "%.*f (%.*f-%.*f)", prec, Median(v), prec,
               *std::min_element(v.begin(), v.end()), prec, *std::max_element(v.begin(), v.end()));
      return std::string(b);
    };
    char bound[64] = "-";
    if (!lb.empty() && lb[0] > 0 && g[0]->link_mbit > 0)
      snprintf(bound, sizeof(bound), "%.1f (%.2f)", Median(lb),
               Median(lb) * 8.388608 / g[0]->link_mbit);
    char bound_z[32] = "-";
    if (!lbz.empty() && lbz[0] > 0) snprintf(bound_z, sizeof(bound_z), "%.1f", Median(lbz));
    md << "| " << g[0]->scenario << " | " << g[0]->label << " | " << g[0]->mode << " | " << ok
       << "/" << g.size() << " | " << cell(t, 2) << " | " << cell(d, 0) << " | " << cell(l, 1)
       << " | " << cell(cg, 2) << " | " << cell(cq, 2) << " | " << bound << " | " << bound_z
       << " |\n";
  }
}

}  // namespace

int RunBench(const Args& args) {
  bool smoke = false;
  int reps = 3, link_mbit = 1000;
  migrate::SenderOptions tuning;
  EncodingChoice enc{.compression = tuning.compression, .features = tuning.features};
  std::string points;  // ",A,B,": only these point labels (empty: all)
  std::string list = "gang-size,hetero,control,busy,link-rate,single-dup,second-batch,neighbours,return", out = "results", guest_dir;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--smoke") {
      smoke = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      fprintf(stderr, "gangmig bench: '%s' needs a value\n\n%s", k.c_str(), kBenchHelp);
      return 2;
    }
    const std::string& v = args[++i];
    if (k == "--scenarios")
      list = v;
    else if (k == "--reps" || k == "--link-mbit") {
      auto n = k == "--reps" ? ParseNumber(k, v, 1, 100) : ParseNumber(k, v, 0, 1 << 20);
      if (!n.ok()) {
        fprintf(stderr, "gangmig bench: %s\n", n.status().message().c_str());
        return 2;
      }
      (k == "--reps" ? reps : link_mbit) = int(*n);
    } else if (k == "--out")
      out = v;
    else if (k == "--guest-dir")
      guest_dir = v;
    else if (k == "--points")
      points = "," + v + ",";
    else if (k == "--verify-copies") {
      auto n = ParseNumber(k, v, 0, 1 << 24);
      if (!n.ok()) {
        fprintf(stderr, "gangmig bench: %s\n", n.status().message().c_str());
        return 2;
      }
      tuning.verify_copies = uint64_t(*n) << 20;
    } else if (k == "--dest-window" || k == "--threads") {
      auto n = ParseNumber(k, v, 0, k == "--threads" ? OrderedWork::kMaxThreads : 1 << 24);
      if (!n.ok()) {
        fprintf(stderr, "gangmig bench: %s\n", n.status().message().c_str());
        return 2;
      }
      if (k == "--threads")
        tuning.threads = int(*n);
      else
        tuning.dest_window_pages = uint64_t(*n);
    } else if (k == "--compress" || k == "--zstd-level" || k == "--delta") {
      Status st = ApplyEncodingFlag(k, v, &enc);
      if (!st.ok()) {
        fprintf(stderr, "gangmig bench: %s\n", st.message().c_str());
        return 2;
      }
    } else {
      fprintf(stderr, "gangmig bench: unknown option '%s'\n\n%s", k.c_str(), kBenchHelp);
      return 2;
    }
  }
  if (smoke) reps = 1;
  tuning.compression = enc.compression;
  tuning.features = enc.features;
  tuning.required_features = enc.required_features;
  auto image = testbed::GuestImage::Locate(guest_dir.empty() ? DefaultGuestDir() : guest_dir);
  if (!image.ok()) {
    fprintf(stderr, "gangmig bench: %s\n", image.status().message().c_str());
    return 1;
  }
  std::optional<testbed::GuestImage> alt;
  if (auto a = testbed::GuestImage::Locate(image->dir + "/alt"); a.ok()) alt = *a;
  if (list.find("hetero") != std::string::npos && !alt)
    fprintf(stderr,
            "gangmig bench: no alt guest (guest/build-guest.sh --flavour alt): "
            "skipping hetero\n");
  std::vector<Point> selected;
  for (const Point& p : Points(list, smoke, alt))
    if (points.empty() || points.find("," + p.label + ",") != std::string::npos)
      selected.push_back(p);
  if (selected.empty()) {
    fprintf(stderr, "gangmig bench: no point of --scenarios %s matches --points %s\n\n%s",
            list.c_str(), points.empty() ? "(all)" : points.substr(1, points.size() - 2).c_str(),
            kBenchHelp);
    return 2;
  }
  std::string link = IsolateNetwork(link_mbit);
  std::filesystem::create_directories(out);
  std::string workdir = MakeWorkdir("gangmig-bench"), key_file = workdir + "/key";
  if (workdir.empty()) return 1;
  if (RunKeygen({key_file}) != 0) return 1;
  std::ofstream csv(out + "/runs.csv");
  csv << "scenario,point,mode,rep,total_time_s,max_downtime_ms,link_bytes_kernel,"
         "link_bytes_gangmig,pages_sent,pages_referenced,zero_pages,lower_bound_bytes,"
         "gangmig_cpu_s,qemu_cpu_s,sender_rss_kib,receiver_rss_kib,status,ram,link_mbit,"
         "lower_bound_compressed_bytes,pages_delta,pages_cached\n";
  std::vector<Row> rows;
  bool all_ok = true;
  int shaped_mbit = link_mbit;
  for (const Point& p : selected) {
    int want_mbit = p.link_mbit ? p.link_mbit : link_mbit;
    if (want_mbit != shaped_mbit) {
      if (Status st = SetLinkRate(want_mbit); !st.ok()) {
        fprintf(stderr, "gangmig bench: %s/%s: %s; skipped\n", p.scenario.c_str(), p.label.c_str(),
                st.message().c_str());
        all_ok = false;
        continue;
      }
      shaped_mbit = want_mbit;
    }
    uint64_t lower_bound = 0, lower_bound_z = 0;
    // One run's row, CSV line and JSON report. false: interrupted, stop.
    auto record = [&](Mode mode, const std::string& label, int rep, Run& run) {
      if (migrate::Interrupted()) {
        fprintf(stderr, "gangmig bench: interrupted\n");
        std::error_code ec;
        std::filesystem::remove_all(workdir, ec);
        return false;
      }
      if (mode == Mode::kGang && run.distinct_pages) {
        lower_bound = run.distinct_pages * 4096 + run.stream_nonpage_bytes;
        lower_bound_z = run.distinct_zstd_bytes + run.stream_nonpage_bytes;
      }
      Row r;
      r.scenario = p.scenario, r.label = label, r.mode = ModeName(mode);
      r.rep = rep, r.link_mbit = shaped_mbit;
      r.time_s = (run.report.end_us - run.report.start_us) / 1e6;
      for (const auto& v : run.report.vms) {
        r.downtime_ms = std::max(r.downtime_ms, v.downtime_ms());
        r.sent += v.pages_sent, r.ref += v.pages_referenced, r.zero += v.zero_pages;
        r.delta += v.pages_delta, r.cached += v.pages_cached;
      }
      r.link_kernel = run.kernel_link_bytes;
      r.link_own = run.report.link_tx_bytes + run.report.link_rx_bytes;
      r.lower_bound = lower_bound;
      r.lower_bound_z = lower_bound_z;
      r.cpu_gangmig = run.report.cpu_seconds + run.receiver_cpu;
      r.cpu_qemu = run.qemu_src_cpu + run.qemu_dst_cpu;
      r.rss_send = mode == Mode::kGang ? run.report.peak_rss_kib : 0;
      r.rss_recv = run.receiver_peak_rss_kib;
      r.ram = run.ram_check;
      r.ok = run.status.ok();
      all_ok = all_ok && r.ok && r.ram == "identical";
      if (!run.status.ok())
        fprintf(stderr, "gangmig bench: %s/%s %s failed: %s\n", p.scenario.c_str(),
              label.c_str(), r.mode.c_str(), run.status.message().c_str());
      rows.push_back(r);
      csv << Csv(r) << "\n" << std::flush;
      std::string dir = out + "/" + p.scenario + "/" + label;
      std::filesystem::create_directories(dir);
      nlohmann::json j = run.report.ToJson();
      j["kernel_link_bytes"] = run.kernel_link_bytes;
      j["ram_check"] = run.ram_check;
      j["distinct_nonzero_pages"] = run.distinct_pages;
      j["lower_bound_bytes"] = lower_bound;
      j["lower_bound_compressed_bytes"] = lower_bound_z;
      if (mode == Mode::kGang) j["distinct_nonzero_pages_zstd_bytes"] = run.distinct_zstd_bytes;
      j["cpu"] = {{"gangmig_migrate", run.report.cpu_seconds},
                {"gangmig_receive", run.receiver_cpu},
                {"qemu_sources", run.qemu_src_cpu},
                {"qemu_destinations", run.qemu_dst_cpu}};
      j["receiver_peak_rss_kib"] = run.receiver_peak_rss_kib;
      j["link"] = link;
      if (mode == Mode::kGang) j["verify_copies_bytes"] = tuning.verify_copies;
      std::ofstream(dir + "/" + r.mode + "-" + std::to_string(rep) + ".json")
          << j.dump(2) << "\n";
      fprintf(stderr, "== %s/%s %s rep %d: %.2f s, link %.1f MiB, RAM %s\n", p.scenario.c_str(),
            label.c_str(), r.mode.c_str(), rep, r.time_s, r.link_kernel / 1048576.0,
            r.ram.c_str());
      return true;
    };
    for (int rep = 1; rep <= reps; ++rep) {
      ReceiverSetup setup;
      std::unique_ptr<testbed::Scenario> neighbours;
      if (p.warm_cache || p.neighbours) {
        setup.cache = workdir + "/cache-" + std::to_string(rep);
        std::error_code ec;
        std::filesystem::remove_all(setup.cache, ec);
      }
      if (p.warm_cache) {
        testbed::ScenarioConfig c = p.config;
        c.workdir = workdir;
        c.image = *image;
        c.first_port = 47001;
        c.first_seed = 1;
        Run first = RunOnce(Mode::kGang, c, key_file, tuning, setup);
        if (!record(Mode::kGang, "first", rep, first)) return 130;
      }
      if (p.neighbours) {
        // The neighbours keep running (their workload too) through all of this rep's runs.
        testbed::ScenarioConfig c = p.config;
        c.vms = p.neighbours;
        c.workdir = workdir + "/neighbours";
        std::filesystem::create_directories(c.workdir);
        c.image = *image;
        c.first_port = 48001;
        c.first_seed = 1;
        c.name_prefix = "nb";
        neighbours = std::make_unique<testbed::Scenario>(c);
        fprintf(stderr, "== neighbours: booting %d VMs on the destination host...\n", c.vms);
        if (Status st = neighbours->Start(); !st.ok()) {
          fprintf(stderr, "gangmig bench: %s/%s: neighbours: %s; skipped\n", p.scenario.c_str(),
                  p.label.c_str(), st.message().c_str());
          all_ok = false;
          break;
        }
        testbed::ScenarioConfig g = p.config;
        g.workdir = workdir;
        g.image = *image;
        g.first_port = 47001;
        Run nocache = RunOnce(Mode::kGang, g, key_file, tuning);
        if (!record(Mode::kGang, "nocache", rep, nocache)) return 130;
        Run unseeded = RunOnce(Mode::kGang, g, key_file, tuning, setup);
        if (!record(Mode::kGang, "unseeded", rep, unseeded)) return 130;
        std::error_code ec;
        std::filesystem::remove_all(setup.cache, ec);  // the seeded run starts as empty
        for (auto& vm : neighbours->sources()) setup.seed_from.push_back(vm->ram_path());
      }
      if (p.return_dwell_s) {
        for (Mode mode : {Mode::kGang, Mode::kDirect, Mode::kDirectMultifdZstd}) {
          testbed::ScenarioConfig c = p.config;
          c.workdir = workdir;
          c.image = *image;
          c.first_port = 47001;
          ReturnSetup trip;
          trip.out_sender = trip.back_sender = tuning;
          trip.out_sender.cache_dir = workdir + "/cache-home-" + std::to_string(rep);
          trip.out_receiver.cache = workdir + "/cache-away-" + std::to_string(rep);
          trip.back_receiver.cache = trip.out_sender.cache_dir;
          trip.dwell_s = p.return_dwell_s;
          auto [out_run, back_run] = RunThereAndBack(mode, c, key_file, trip);
          for (const std::string& d : {trip.out_sender.cache_dir, trip.out_receiver.cache}) {
            std::error_code ec;
            std::filesystem::remove_all(d, ec);
          }
          if (!record(mode, "out", rep, out_run)) return 130;
          if (!record(mode, "back", rep, back_run)) return 130;
        }
        continue;
      }
      for (Mode mode : {Mode::kGang, Mode::kDirect, Mode::kDirectMultifdZstd}) {
        testbed::ScenarioConfig c = p.config;
        c.workdir = workdir;
        c.image = *image;
        c.first_port = 47001;
        Run run = RunOnce(mode, c, key_file, tuning, mode == Mode::kGang ? setup : ReceiverSetup{});
        std::string label = p.warm_cache ? "second" : p.neighbours ? "seeded" : p.label;
        if (!record(mode, label, rep, run)) return 130;
      }
      if (neighbours) (void)neighbours->StopAll();
    }
  }
  WriteSummary(rows, out + "/summary.md", link);
  std::error_code ec;
  std::filesystem::remove_all(workdir, ec);
  std::ifstream summary(out + "/summary.md");
  std::stringstream text;
  text << summary.rdbuf();
  printf("%s", text.str().c_str());
  printf("bench %s: results in %s/\n", all_ok ? "completed" : "had failures", out.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace gangmig::cli
