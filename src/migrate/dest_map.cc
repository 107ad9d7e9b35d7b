#include "migrate/dest_map.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "net/socket.h"
#include "wire/control.h"

namespace gangmig::migrate {
namespace {

// A parsed map line's address must be one the receiver can connect to.
Status CheckAddress(const std::string& address) {
  auto a = net::ParseAddress(address);
  if (!a.ok()) return a.status();
  if (address.rfind("unix:", 0) != 0 && address.rfind("tcp:", 0) != 0)
    return Status::Error("address '" + address + "' must start with unix: or tcp:");
  return Status::Ok();
}


}  // namespace

std::string NotASocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return "does not exist";
  if (S_ISLNK(st.st_mode)) return "is a symlink (refused: name a socket itself)";
  if (!S_ISSOCK(st.st_mode)) return "is not a socket";
  return "";
}

Result<DestMap> DestMap::Parse(std::string_view text, const std::string& origin) {
  DestMap map;
  std::istringstream in{std::string(text)};
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string name, address, qmp, extra;
    if (!(words >> name)) continue;
    auto where = [&] { return origin + ":" + std::to_string(n) + ": "; };
    if (!(words >> address))
      return Status::Error(where() + "expected NAME ADDRESS [QMP-SOCKET], got only '" + name + "'");
    words >> qmp;
    if (words >> extra) return Status::Error(where() + "unexpected '" + extra + "' after QMP-SOCKET");
    if (!wire::ValidVmName(name))
      return Status::Error(where() + "VM name '" + name +
                           "' must be 1-64 characters of A-Z a-z 0-9 . _ -");
    Status st = CheckAddress(address);
    if (!st.ok()) return st.WithContext(where().substr(0, where().size() - 2));
    if (!qmp.empty() && qmp[0] != '/')
      return Status::Error(where() + "QMP socket '" + qmp + "' must be an absolute path");
    if (!map.entries_.emplace(name, Destination{address, qmp}).second)
      return Status::Error(where() + "VM '" + name + "' is mapped twice");
  }
  return map;
}

Result<DestMap> DestMap::Load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::Error("cannot read destination map " + path);
  std::stringstream text;
  text << f.rdbuf();
  return Parse(text.str(), path);
}

Result<Destination> DestMap::Resolve(const std::string& name) const {
  if (!wire::ValidVmName(name)) return Status::Error("invalid VM name");
  auto it = entries_.find(name);
  if (it != entries_.end()) return it->second;
  if (!dir_.empty()) return InDir(name);
  return Status::Error("receiver has no destination for vm " + name +
                       " (not in its --dest-map, and no --dest-dir)");
}

Result<Destination> DestMap::InDir(const std::string& name) const {
  std::string sock = dir_ + "/" + name + ".sock", qmp = dir_ + "/" + name + ".qmp";
  std::string why = NotASocket(sock);
  if (!why.empty() && !(may_appear_later_ && why == "does not exist"))
    return Status::Error("receiver has no destination for vm " + name + ": " + sock + " " + why +
                         " (start its destination QEMU with -incoming unix:" + sock + ")");
  Destination d{"unix:" + sock, ""};
  std::string qmp_why = NotASocket(qmp);
  if (qmp_why.empty()) {
    d.qmp = qmp;
  } else if (qmp_why != "does not exist") {
    return Status::Error("vm " + name + ": " + qmp + " " + qmp_why);
  }
  return d;
}

}  // namespace gangmig::migrate
