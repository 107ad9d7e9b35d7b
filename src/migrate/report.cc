#include "migrate/report.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace gangmig::migrate {

double VmReport::end_to_end_s() const {
  if (start_us == 0 || end_us == 0) return -1;
  return double(end_us - start_us) / 1e6;
}

double VmReport::downtime_ms() const {
  if (manager_downtime_ms >= 0) return manager_downtime_ms;  // it saw the STOP we did not
  if (stop_us == 0 || end_us == 0 || end_us < stop_us) return -1;
  return double(end_us - stop_us) / 1e3;
}

std::string VmReport::downtime_end() const {
  if (manager_downtime_ms >= 0) return "libvirt";
  if (dest_resume_us != 0) return "resume";
  if (dest_loaded_us != 0) return "loaded";
  return "";
}

nlohmann::json Report::ToJson() const {
  using nlohmann::json;
  json j;
  j["mode"] = mode;
  j["total_time_s"] = double(end_us - start_us) / 1e6;
  uint64_t stream = 0, link = 0, frames = 0, sent = 0, ref = 0, delta = 0, zero = 0, pass = 0,
           cached = 0;
  j["vms"] = json::array();
  for (const VmReport& v : vms) {
    j["vms"].push_back({{"name", v.name},
                        {"status", v.status},
                        {"error", v.error},
                        {"end_to_end_s", v.end_to_end_s()},
                        {"downtime_ms", v.downtime_ms()},
                        {"downtime_end", v.downtime_end()},
                        {"start_us", v.start_us},
                        {"stop_us", v.stop_us},
                        {"dest_loaded_us", v.dest_loaded_us},
                        {"dest_resume_us", v.dest_resume_us},
                        {"stream_bytes", v.stream_bytes},
                        {"link_bytes", v.link_bytes},
                        {"frame_bytes", v.frame_bytes},
                        {"stream_bytes_at_stop", v.stream_bytes_at_stop},
                        {"frame_bytes_at_stop", v.frame_bytes_at_stop},
                        {"source_eof_us", v.source_eof_us},
                        {"source_last_data_us", v.source_last_data_us},
                        {"ram_end_us", v.ram_end_us},
                        {"dest_eof_frame_us", v.dest_eof_frame_us},
                        {"dest_delivered_us", v.dest_delivered_us},
                        {"source_completed_us", v.source_completed_us},
                        {"rp_bytes", v.rp_bytes},
                        {"pages_sent", v.pages_sent},
                        {"pages_referenced", v.pages_referenced},
                        {"pages_delta", v.pages_delta},
                        {"delta_bytes", v.delta_bytes},
                        {"pages_cached", v.pages_cached},
                        {"zero_pages", v.zero_pages},
                        {"passthrough_bytes", v.passthrough_bytes},
                        {"passthrough_reason", v.passthrough_reason},
                        {"source_final_state", v.source_final_state}});
    stream += v.stream_bytes;
    link += v.link_bytes;
    frames += v.frame_bytes;
    sent += v.pages_sent;
    ref += v.pages_referenced;
    delta += v.pages_delta;
    cached += v.pages_cached;
    zero += v.zero_pages;
    pass += v.passthrough_bytes;
  }
  j["total"] = {{"stream_bytes", stream},
                {"link_bytes", link},
                {"frame_bytes", frames},
                {"pages_sent", sent},
                {"pages_referenced", ref},
                {"pages_delta", delta},
                {"pages_cached", cached},
                {"zero_pages", zero},
                {"passthrough_bytes", pass},
                {"link_tx_bytes", link_tx_bytes},
                {"link_rx_bytes", link_rx_bytes},
                {"cpu_seconds", cpu_seconds},
                {"peak_rss_kib", peak_rss_kib}};
  j["error"] = error;
  j["extra"] = extra;
  return j;
}

static std::string Mib(uint64_t b) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f", double(b) / (1 << 20));
  return buf;
}

std::string Report::Table() const {
  std::ostringstream o;
  char line[256];
  snprintf(line, sizeof(line), "%-12s %-9s %8s %10s %10s %10s %9s %9s %8s\n", "vm", "status",
           "time s", "downtime", "stream MiB", "link MiB", "sent", "ref", "zero");
  o << line;
  for (const VmReport& v : vms) {
    snprintf(line, sizeof(line), "%-12s %-9s %8.2f %8.0fms %10s %10s %9llu %9llu %8llu\n",
             v.name.c_str(), v.status.c_str(), v.end_to_end_s(), v.downtime_ms(),
             Mib(v.stream_bytes).c_str(), Mib(v.link_bytes).c_str(),
             (unsigned long long)v.pages_sent, (unsigned long long)v.pages_referenced,
             (unsigned long long)v.zero_pages);
    o << line;
    if (!v.passthrough_reason.empty())
      o << "             pass-through: " << v.passthrough_reason << "\n";
    if (!v.error.empty()) o << "             error: " << v.error << "\n";
  }
  snprintf(line, sizeof(line),
           "total: %.2f s wall, link %s MiB sent / %s MiB received, gangmig CPU %.2f s, "
           "peak RSS %llu MiB\n",
           double(end_us - start_us) / 1e6, Mib(link_tx_bytes).c_str(), Mib(link_rx_bytes).c_str(),
           cpu_seconds, (unsigned long long)(peak_rss_kib / 1024));
  o << line;
  return o.str();
}

uint64_t PeakRssKib() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmHWM:") {
      uint64_t v = 0;
      f >> v;
      return v;
    }
    std::string rest;
    std::getline(f, rest);
  }
  return 0;
}

}  // namespace gangmig::migrate
