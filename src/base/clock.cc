#include "base/clock.h"

#include <sys/resource.h>
#include <time.h>

namespace gangmig {

static int64_t Micros(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int64_t WallMicros() { return Micros(CLOCK_REALTIME); }
int64_t MonotonicMicros() { return Micros(CLOCK_MONOTONIC); }

double ThreadCpuSeconds() { return double(Micros(CLOCK_THREAD_CPUTIME_ID)) / 1e6; }

double ProcessCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace gangmig
