// The guest image the testbed boots: a kernel and an initramfs built by
// guest/build-guest.sh into one directory (by default guest/out in the source tree).
// The guest runs a memory workload and prints "gangmig-guest: ready" on its serial
// console once the workload has filled its memory.
#pragma once

#include <string>

#include "base/status.h"

namespace gangmig::testbed {

// The line the guest prints on ttyS0 when its workload has filled its memory.
inline constexpr char kGuestReadyMarker[] = "gangmig-guest: ready";

struct GuestImage {
  std::string dir;     // the directory given to Locate()
  std::string kernel;  // dir/vmlinuz
  std::string initrd;  // dir/initrd.img

  // Checks that dir/vmlinuz and dir/initrd.img exist. The error tells the user to run
  // guest/build-guest.sh.
  static Result<GuestImage> Locate(const std::string& dir);
  // $GANGMIG_GUEST_DIR when set and non-empty, else `fallback`.
  static std::string DirFromEnv(const std::string& fallback);
};

}  // namespace gangmig::testbed
