#include "cli/flags.h"

#include <cerrno>
#include <cstdlib>

#include "wire/wire_format.h"

namespace gangmig::cli {

Result<int64_t> ParseNumber(const std::string& flag, const std::string& value, int64_t min,
                            int64_t max) {
  const char* s = value.c_str();
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (value.empty() || *end != '\0' || errno == ERANGE)
    return Status::Error(flag + ": '" + value + "' is not a whole number");
  if (v < min || v > max)
    return Status::Error(flag + ": " + value + " is out of range (" + std::to_string(min) + ".." +
                         std::to_string(max) + ")");
  return int64_t(v);
}

Status ApplyEncodingFlag(const std::string& flag, const std::string& value, EncodingChoice* c) {
  using Mode = encode::CompressionOptions::Mode;
  if (flag == "--zstd-level") {
    auto n = ParseNumber(flag, value, -7, 19);
    if (!n.ok()) return n.status();
    c->compression.level = int(*n);
    return Status::Ok();
  }
  const bool compress = flag == "--compress";
  const uint16_t bit = compress ? wire::kFeatureZstd : wire::kFeatureDelta;
  const char* forced = compress ? "zstd" : "on";
  c->required_features &= uint16_t(~bit);
  if (value == "auto") {
    c->features |= bit;
    if (compress) c->compression.mode = Mode::kAuto;
  } else if (value == forced) {
    c->features |= bit;
    c->required_features |= bit;
    if (compress) c->compression.mode = Mode::kAlways;
  } else if (value == "off") {
    c->features &= uint16_t(~bit);
    if (compress) c->compression.mode = Mode::kOff;
  } else {
    return Status::Error(flag + ": '" + value + "' is not one of auto, " + forced + ", off");
  }
  return Status::Ok();
}

}  // namespace gangmig::cli
