// gangmig proxy: a long-running daemon on a source host for orchestrators that drive
// libvirt themselves (Nova, KubeVirt's handler, scripts). For each peer (a destination
// host running `gangmig receive --dest-dir SOCKET_DIR/PEER`) it keeps a directory
// SOCKET_DIR/PEER with one listening socket NAME.sock per VM name it serves: the names
// given, and the domains libvirt runs on this host (--discover). An orchestrator that
// runs `virsh migrate --live --p2p DOMAIN DEST --migrateuri
// unix://SOCKET_DIR/PEER/DOMAIN.sock` makes the source QEMU connect here, and libvirt's
// destination QEMU listen on the same path on the peer, where the receiver connects.
// Every stream that connects while a session to that peer is open, or within the linger
// window after its last VM finished, joins that session and shares its dedup index;
// later ones start a new session. The proxy never touches QMP: libvirt starts, watches
// and rolls back each migration (a failed stream is closed, so the source fails it).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "migrate/sender.h"

namespace gangmig::migrate {

struct ProxyPeer {
  std::string name;      // the directory's name under socket_dir (the destination host)
  std::string receiver;  // HOST:PORT of its `gangmig receive`
};

struct ProxyOptions {
  std::vector<ProxyPeer> peers;
  std::string socket_dir = "/run/gangmig";
  std::vector<std::string> names;  // VM names always served
  std::string discover_uri;        // also every running domain of this libvirt ("": none)
  int discover_ms = 2000;          // how often the domain list is read
  // Group given the directories and sockets (0770 / 0660) so that QEMU running as
  // another user can connect ("" = root only).
  std::string socket_group;
  std::string report_dir;  // one JSON report per session ("" = none)
  // Key, encoding, memory and timeout settings of every session; receiver, vms, joins,
  // linger_ms and progress are set per session.
  SenderOptions session;
};

// Runs until SIGINT/SIGTERM (sessions under way are then failed: their sources keep
// their VMs). Errors: the socket directories cannot be made.
Status RunProxy(const ProxyOptions& options);

}  // namespace gangmig::migrate
