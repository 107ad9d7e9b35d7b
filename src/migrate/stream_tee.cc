#include "migrate/stream_tee.h"

#include <stdio.h>
#include <stdlib.h>

#include <string>

namespace gangmig::migrate {

void TeeStream(const char* side, uint16_t vm, uint8_t channel, ByteView data) {
  static const char* dir = getenv("GANGMIG_TEE_DIR");
  if (dir == nullptr) return;
  std::string path = std::string(dir) + "/" + side + "-vm" + std::to_string(vm) + "-ch" +
                     std::to_string(channel) + ".bin";
  FILE* f = fopen(path.c_str(), "ab");
  if (f == nullptr) return;
  fwrite(data.data(), 1, data.size(), f);
  fclose(f);
}

}  // namespace gangmig::migrate
