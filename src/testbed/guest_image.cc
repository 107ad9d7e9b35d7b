#include "testbed/guest_image.h"

#include <stdlib.h>

#include <filesystem>

namespace gangmig::testbed {

Result<GuestImage> GuestImage::Locate(const std::string& dir) {
  GuestImage image{dir, dir + "/vmlinuz", dir + "/initrd.img"};
  for (const std::string& file : {image.kernel, image.initrd}) {
    std::error_code ec;
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
