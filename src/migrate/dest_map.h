// Where the receiver host feeds each VM's stream. A sender may only name a VM (VM_OPEN
// carries the name and nothing else); this map, owned by the receiver host, turns the
// name into the address its destination QEMU listens on (-incoming) and, optionally,
// the QMP socket through which the receiver watches the load. Two sources, entries of a
// map file first:
//
//   --dest-map FILE   one line per VM:  NAME ADDRESS [QMP-SOCKET]   ('#' starts a comment)
//                     ADDRESS is unix:PATH or tcp:HOST:PORT; QMP-SOCKET an absolute path
//   --dest-dir DIR    VM NAME -> unix:DIR/NAME.sock, with DIR/NAME.qmp as its QMP socket
//                     when that exists; both must be sockets (a symlink is refused, so a
//                     name cannot be pointed elsewhere by whoever may write into DIR)
//
// Names are checked by wire::ValidVmName before they are looked up, so a name never
// walks out of DIR.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/status.h"

namespace gangmig::migrate {

struct Destination {
  std::string address;  // unix:PATH or tcp:HOST:PORT
  std::string qmp;      // empty: none (the receiver reports "loaded" without QMP's view)
};

class DestMap {
 public:
  // Parses a map file's text; `origin` names it in errors ("map.txt:3: ...").
  static Result<DestMap> Parse(std::string_view text, const std::string& origin);
  // Reads and parses the file at `path`.
  static Result<DestMap> Load(const std::string& path);

  // Names not in the map resolve in `dir` (empty: no directory). `may_appear_later`:
  // a DIR/NAME.sock that does not exist yet still resolves (receive --dest-wait); one
  // that exists must still be a socket, never a symlink.
  void set_dir(std::string dir, bool may_appear_later = false) {
    dir_ = std::move(dir);
    may_appear_later_ = may_appear_later;
  }
  bool empty() const { return entries_.empty() && dir_.empty(); }
  size_t entries() const { return entries_.size(); }

  // Where VM `name` goes, or why it has none (the text says what to create or add).
  Result<Destination> Resolve(const std::string& name) const;

 private:
  Result<Destination> InDir(const std::string& name) const;

  std::map<std::string, Destination> entries_;
  std::string dir_;
  bool may_appear_later_ = false;
};

// "" when `path` is a unix socket (not a symlink to one); else what it is instead
// ("does not exist", "is a symlink (refused)", "is not a socket").
std::string NotASocket(const std::string& path);

}  // namespace gangmig::migrate
