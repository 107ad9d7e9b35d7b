#include "migrate/progress.h"

#include <unistd.h>

#include "base/clock.h"

namespace gangmig::migrate {

Progress::Progress(FILE* out, bool enabled)
    : out_(out), enabled_(enabled), tty_(isatty(fileno(out))) {}

void Progress::Update(const std::vector<VmReport>& vms, int64_t start_us, bool force) {
  if (!enabled_) return;
  int64_t now = MonotonicMicros();
  int64_t interval = tty_ ? 1000000 : 5000000;
  if (!force && now - last_us_ < interval) return;
  double dt = last_us_ ? double(now - last_us_) / 1e6 : 0;
  last_us_ = now;
  last_bytes_.resize(vms.size(), 0);
  if (tty_ && lines_drawn_) fprintf(out_, "\033[%zuA", lines_drawn_);
  double elapsed = double(WallMicros() - start_us) / 1e6;
  for (size_t i = 0; i < vms.size(); ++i) {
    const VmReport& v = vms[i];
    uint64_t pages = v.pages_sent + v.pages_referenced;
    double dedup = pages ? 100.0 * double(v.pages_referenced) / double(pages) : 0;
    double rate = dt > 0 ? double(v.stream_bytes - last_bytes_[i]) / dt / (1 << 20) : 0;
    last_bytes_[i] = v.stream_bytes;
    fprintf(
        out_,
        "%s[%6.1fs] %-12s %-10s stream %8.1f MiB  link %8.1f MiB  dedup %5.1f%%  %7.1f MiB/s%s\n",
        tty_ ? "\033[2K" : "", elapsed, v.name.c_str(), v.phase.c_str(),
        double(v.stream_bytes) / (1 << 20), double(v.link_bytes) / (1 << 20), dedup, rate,
        v.passthrough_reason.empty() ? "" : "  (pass-through)");
  }
  lines_drawn_ = vms.size();
  fflush(out_);
}

}  // namespace gangmig::migrate
