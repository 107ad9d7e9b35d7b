// Parsing of the --vm option: name=N[,qmp=PATH][,dest=ADDR[,dest-qmp=PATH]] (dest only
// with --direct: through a receiver, the receiver host maps names to destinations).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "migrate/report.h"

namespace gangmig::migrate {

Result<VmSpec> ParseVmSpec(const std::string& text);
// Checks names are unique, and that every VM has a tcp: dest with `direct` and none
// without (a sender never says where the receiver writes).
// With `libvirt`, name= is a domain and qmp= is not allowed; without, qmp= is required.
Status ValidateVmSpecs(const std::vector<VmSpec>& vms, bool direct, bool libvirt = false);

}  // namespace gangmig::migrate
