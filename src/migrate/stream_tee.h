// Debugging aid for both ends: with GANGMIG_TEE_DIR set, every stream byte is also
// appended to $GANGMIG_TEE_DIR/<side>-vm<id>-ch<channel>.bin, so the bytes a source QEMU
// wrote and the bytes its destination QEMU was given can be compared (the end-to-end
// tests do). Off, it costs one branch.
#pragma once

#include <cstdint>

#include "base/bytes.h"

namespace gangmig::migrate {

void TeeStream(const char* side, uint16_t vm, uint8_t channel, ByteView data);

}  // namespace gangmig::migrate
