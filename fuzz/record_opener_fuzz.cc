// The record opener on arbitrary bytes (fed in pieces): never a crash, never a body
// without a valid tag; and any input sealed as a body opens back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "wire/record.h"

using namespace gangmig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes key(32, 0x5a);
  ByteView in(data, size);
  wire::RecordOpener opener(key);
  Bytes body;
  for (size_t at = 0; at < size; at += 7) {
    opener.Feed(in.subspan(at, std::min<size_t>(7, size - at)));
    for (;;) {
      auto r = opener.Next(&body);
      if (!r.ok() || !*r) break;
      // Reaching here means a forged tag verified: impossible without the key.
      std::abort();
    }
  }
  (void)opener.AtEnd();
  if (size == 0 || size > wire::kMaxRecordBody) return 0;
  wire::RecordSealer sealer(key);
  Bytes rec;
  sealer.Seal(in, &rec);
  wire::RecordOpener ok(key);
  ok.Feed(rec);
  auto r = ok.Next(&body);
  if (!r.ok() || !*r || body != Bytes(in.begin(), in.end())) std::abort();
  return 0;
}
