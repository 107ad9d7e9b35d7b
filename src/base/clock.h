// Time sources. Wall time (microseconds since the epoch) is what QMP event timestamps
// use, so downtime can be computed across the two hosts; monotonic time is for timeouts
// and rates.
#pragma once

#include <cstdint>

namespace gangmig {

int64_t WallMicros();        // CLOCK_REALTIME in microseconds
int64_t MonotonicMicros();   // CLOCK_MONOTONIC in microseconds
double ProcessCpuSeconds();  // user+system CPU time of this process
double ThreadCpuSeconds();   // CPU time of the calling thread

}  // namespace gangmig
