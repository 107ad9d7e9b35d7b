// The destination side: accepts the sender's authenticated connection, connects to each
// VM's destination QEMU, rebuilds every migration stream byte for byte from DATA, PAGE
// and REF frames, relays the return path back, and reports when each destination has
// loaded its stream (and, given its QMP socket, whether and when it resumed).
#pragma once

#include <string>

#include "base/bytes.h"
#include "base/ordered_work.h"
#include "base/status.h"
#include "wire/wire_format.h"

namespace gangmig::migrate {

struct ReceiverOptions {
  std::string listen;  // HOST:PORT
  Bytes key;
  bool once = false;             // exit after one session
  size_t max_buffer = 8u << 20;  // bytes queued towards one destination before pausing the link
  bool verbose = true;
  uint16_t features = wire::kFeaturesKnown;  // accepted from senders (wire::kFeature*)
  // Worker threads that decompress ZFRAMES bodies (0: on the data thread).
  // REQUIRES: 0 <= threads <= OrderedWork::kMaxThreads
  int threads = OrderedWork::DefaultThreads();
};

// Connections that have not yet proven the key, at most: in all, and from one address.
// Beyond these, new connections are closed at once (senders retry).
inline constexpr size_t kMaxPendingHandshakes = 64;
inline constexpr size_t kMaxPendingPerAddress = 8;

// Serves sessions, several at once, each on its own thread, until an error (or, with
// `once`, until the first authenticated session ends; its error is returned). Without
// `once`, session errors are logged and serving goes on.
Status RunReceiver(const ReceiverOptions& options);

}  // namespace gangmig::migrate
