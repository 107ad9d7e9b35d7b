#include "migrate/vm_spec.h"

#include <set>
#include <sstream>

#include "wire/control.h"

namespace gangmig::migrate {

Result<VmSpec> ParseVmSpec(const std::string& text) {
  VmSpec spec;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos)
      return Status::Error("--vm '" + text + "': '" + item + "' is not key=value");
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "name")
      spec.name = value;
    else if (key == "qmp")
      spec.qmp = value;
    else if (key == "dest")
      spec.dest = value;
    else if (key == "dest-qmp")
      spec.dest_qmp = value;
    else
      return Status::Error("--vm '" + text + "': unknown key '" + key +
                           "' (expected name, qmp, dest, dest-qmp)");
  }
  if (spec.name.empty()) return Status::Error("--vm '" + text + "': name= is required");
  if (!wire::ValidVmName(spec.name))
    return Status::Error("--vm '" + text + "': name '" + spec.name +
                         "' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  return spec;
}

Status ValidateVmSpecs(const std::vector<VmSpec>& vms, bool direct, bool libvirt) {
  if (vms.empty()) return Status::Error("no VM given: pass at least one --vm");
  std::set<std::string> names;
  for (const VmSpec& v : vms) {
    if (!names.insert(v.name).second)
      return Status::Error("VM name '" + v.name + "' is given twice");
    if (libvirt && !v.qmp.empty())
      return Status::Error("vm " + v.name +
                           ": qmp= is not for --libvirt (libvirt owns the monitor; name= is "
                           "the domain)");
    if (!libvirt && v.qmp.empty())
      return Status::Error("vm " + v.name + ": qmp= is required (or --libvirt for a libvirt "
                           "domain)");
    if (direct && v.dest.rfind("tcp:", 0) != 0)
      return Status::Error("vm " + v.name + ": --direct needs dest=tcp:HOST:PORT (got '" + v.dest +
                           "')");
    if (!direct && !(v.dest.empty() && v.dest_qmp.empty()))
      return Status::Error("vm " + v.name +
                           ": dest= and dest-qmp= are for --direct only; through a receiver, the "
                           "receiver host maps each VM name to its destination (gangmig receive "
                           "--dest-dir or --dest-map)");
  }
  return Status::Ok();
}

}  // namespace gangmig::migrate
