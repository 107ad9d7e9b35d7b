// Reading flag values: every number and choice is checked, and a bad one is an error
// that names the flag, the value and what is allowed ("--max-buffer: 'abc' is not a
// whole number", "--vms: 0 is out of range (1..16)"), never a silent 0.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "encode/frame_compressor.h"

namespace gangmig::cli {

// A whole decimal number in [min, max].
Result<int64_t> ParseNumber(const std::string& flag, const std::string& value, int64_t min,
                            int64_t max);

// --compress auto|zstd|off and --delta auto|on|off, as the sender's offer to the receiver.
struct EncodingChoice {
  encode::CompressionOptions compression;
  uint16_t features = 0;           // offered (wire::kFeature*)
  uint16_t required_features = 0;  // refuse a receiver without these
};
// Applies one of the flags above (`flag` is "--compress", "--zstd-level" or "--delta").
Status ApplyEncodingFlag(const std::string& flag, const std::string& value, EncodingChoice* c);

}  // namespace gangmig::cli
