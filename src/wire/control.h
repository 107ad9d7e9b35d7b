// The JSON control messages inside VM_OPEN and VM_EVENT frames, decoded strictly: the
// payload must be a JSON object whose every field is known and of its type, with the
// required fields present; anything else is an error that names the field, never an
// exception. Both peers decode what the other sends with these (a hostile peer that
// holds the key must not be able to crash either end). Format: docs/WIRE.md, section 4.
#pragma once

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace gangmig::wire {

// VM_OPEN: the sender names a VM it is about to stream, and nothing else: where its
// destination listens is the receiver host's decision (migrate/dest_map.h).
struct VmOpenMessage {
  std::string name;  // required, 1..64 bytes of [A-Za-z0-9._-], not "." or ".."
};

// VM_EVENT: the receiver tells the sender what happened to a VM's destination.
struct VmEventMessage {
  std::string event;       // required: ready | progress | done | failed
  uint64_t delivered = 0;  // progress: stream bytes given to the destination (required)
  uint64_t bytes = 0;      // done: stream bytes in all
  int64_t loaded_us = 0, resume_us = 0, eof_frame_us = 0, delivered_us = 0;  // done
  std::string dest_status, dest_migration;                                   // done, optional
  std::string error;                                                         // failed (required)
};

Result<VmOpenMessage> ParseVmOpen(ByteView json);
std::string SerializeVmOpen(const VmOpenMessage& m);
Result<VmEventMessage> ParseVmEvent(ByteView json);

// True for a VM name VM_OPEN accepts (also used to map names to sockets on the receiver).
bool ValidVmName(const std::string& name);

}  // namespace gangmig::wire
