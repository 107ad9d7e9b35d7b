// Parsing of the --vm option: name=N,qmp=PATH,dest=ADDR[,dest-qmp=PATH].
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "migrate/report.h"

namespace gangmig::migrate {

Result<VmSpec> ParseVmSpec(const std::string& text);
// Checks names are unique and every VM has what `direct` needs (a tcp: dest) if asked.
Status ValidateVmSpecs(const std::vector<VmSpec>& vms, bool direct);

}  // namespace gangmig::migrate
