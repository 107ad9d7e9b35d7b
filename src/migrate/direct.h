// The baseline: plain QEMU migration of the same VMs, each straight to its destination,
// all started at once, with the same figures collected as for a gang migration.
#pragma once

#include "base/status.h"
#include "migrate/report.h"
#include "migrate/sender.h"

namespace gangmig::migrate {

// Uses options.vms (dest must be tcp:), timeout_s and progress. Same report shape as
// RunGangMigration; stream/link bytes come from QEMU's query-migrate counters.
Status RunDirectMigration(const SenderOptions& options, Report* report);

}  // namespace gangmig::migrate
