#include "testbed/guest_image.h"

#include <stdlib.h>

#include <filesystem>

namespace gangmig::testbed {

Result<GuestImage> GuestImage::Locate(const std::string& dir) {
  // vmlinux (the same kernel, already decompressed, booted through its PVH entry) saves
  // the guest several seconds of decompression under TCG; vmlinuz is the fallback.
  std::error_code ec;
  std::string kernel =
      std::filesystem::is_regular_file(dir + "/vmlinux", ec) ? dir + "/vmlinux" : dir + "/vmlinuz";
  GuestImage image{dir, kernel, dir + "/initrd.img"};
  for (const std::string& file : {image.kernel, image.initrd}) {
    if (!std::filesystem::is_regular_file(file, ec)) {
      return Status::Error("guest image: " + file +
                           " not found; build the guest with guest/build-guest.sh (its "
                           "output directory is guest/out, or set GANGMIG_GUEST_DIR)");
    }
  }
  return image;
}

std::string GuestImage::DirFromEnv(const std::string& fallback) {
  const char* env = getenv("GANGMIG_GUEST_DIR");
  return env != nullptr && env[0] != '\0' ? env : fallback;
}

}  // namespace gangmig::testbed
