// Progress while a migration runs: one line per VM, rewritten in place on a terminal,
// plain periodic lines otherwise (logs, CI).
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

#include "migrate/report.h"

namespace gangmig::migrate {

class Progress {
 public:
  // `out` is usually stderr; `enabled` false silences it (e.g. --quiet).
  Progress(FILE* out, bool enabled);
  // Prints if the interval has passed (1 s on a terminal, 5 s otherwise) or `force`.
  void Update(const std::vector<VmReport>& vms, int64_t start_us, bool force = false);

 private:
  FILE* out_;
  bool enabled_;
  bool tty_;
  int64_t last_us_ = 0;
  size_t lines_drawn_ = 0;
  std::vector<uint64_t> last_bytes_;
};

}  // namespace gangmig::migrate
