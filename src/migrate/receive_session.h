// One authenticated session of the receiver: rebuilds every VM stream of one sender and
// feeds each to the destination QEMU the receiver host maps its name to.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "migrate/receiver.h"
#include "net/socket.h"
#include "store/cache_drain.h"
#include "wire/handshake.h"

namespace gangmig::migrate {

// Runs the session on `fd` (the handshake done, `keys` and `features` agreed) until the
// sender's GOODBYE after every VM was reported, or until an error, which is returned
// after every unfinished VM was failed and an ABORT sent. `options` must outlive the call.
// `drain` (null: no cache) receives a copy of every distinct page; `cache` (null: none)
// resolves the sender's CREFs.
Status RunReceiveSession(const ReceiverOptions& options, net::Fd fd, const wire::SessionKeys& keys,
                         uint16_t features, store::CacheDrain* drain, store::PageCache* cache);

}  // namespace gangmig::migrate
