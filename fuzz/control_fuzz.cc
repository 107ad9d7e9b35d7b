// The JSON control messages (VM_OPEN, VM_EVENT) on arbitrary bytes: errors, never an
// exception or a crash; what VM_OPEN accepts re-serialises to something it accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "wire/control.h"

using namespace gangmig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto open = wire::ParseVmOpen(in);
  if (open.ok()) {
    if (!wire::ValidVmName(open->name)) std::abort();
    auto again = wire::ParseVmOpen(AsBytes(wire::SerializeVmOpen(*open)));
    if (!again.ok() || again->name != open->name) std::abort();
  }
  (void)wire::ParseVmEvent(in);
  return 0;
}
