// Delta encoder: pages are compared 8 bytes at a time; runs of differing words become
// literal runs, and an unchanged gap shorter than a run header (kMinGap) is folded into
// the literal around it, since skipping it would cost more than sending it. The encoder
// stops as soon as the delta would exceed max_len, so an unrelated page costs at most a
// few hundred comparisons. The decoder trusts nothing: every length is checked against
// the page end and the bytes left before it is used.
#include "encode/delta.h"

#include <cstring>
#include <string>

namespace gangmig::encode {
namespace {

constexpr size_t kWord = 8;
constexpr size_t kMinGap = 2 * kWord;  // unchanged gaps shorter than this are sent

bool WordsEqual(const uint8_t* a, const uint8_t* b) { return std::memcmp(a, b, kWord) == 0; }

size_t VarintSize(size_t v) { return v < 128 ? 1 : 2; }

void PutVarint(Bytes* out, size_t v) {
  if (v < 128) {
    out->push_back(uint8_t(v));
  } else {
    out->push_back(uint8_t(0x80 | (v & 0x7f)));
    out->push_back(uint8_t(v >> 7));
  }
}

// Reads a uvarint of at most 2 bytes at delta[*pos]; false when truncated or too long.
bool GetVarint(ByteView delta, size_t* pos, size_t* v) {
  if (*pos >= delta.size()) return false;
  uint8_t b0 = delta[(*pos)++];
  if (!(b0 & 0x80)) {
    *v = b0;
    return true;
  }
  if (*pos >= delta.size()) return false;
  uint8_t b1 = delta[(*pos)++];
  if (b1 & 0x80) return false;
  *v = size_t(b0 & 0x7f) | size_t(b1) << 7;
  return true;
}

}  // namespace

size_t EncodeDelta(ByteView base, ByteView page, size_t max_len, Bytes* out) {
  const size_t start = out->size();
  const uint8_t* b = base.data();
  const uint8_t* p = page.data();
  size_t kept = 0;  // end of what the runs so far cover
  size_t at = 0;
  while (at < kDeltaPageSize) {
    while (at < kDeltaPageSize && WordsEqual(b + at, p + at)) at += kWord;
    if (at == kDeltaPageSize) break;
    size_t lit = at;  // a literal run starts here; extend it over short unchanged gaps
    size_t end = at + kWord;
    for (;;) {
      while (end < kDeltaPageSize && !WordsEqual(b + end, p + end)) end += kWord;
      size_t gap = end;
      while (gap < kDeltaPageSize && gap - end < kMinGap && WordsEqual(b + gap, p + gap))
        gap += kWord;
      if (gap == kDeltaPageSize || gap - end >= kMinGap) break;
      end = gap;  // a short gap followed by more changes: send it with them
    }
    size_t cost = VarintSize(lit - kept) + VarintSize(end - lit) + (end - lit);
    if (out->size() - start + cost > max_len) {
      out->resize(start);
      return 0;
    }
    PutVarint(out, lit - kept);
    PutVarint(out, end - lit);
    out->insert(out->end(), p + lit, p + end);
    kept = at = end;
  }
  return out->size() - start;
}

Status ApplyDelta(ByteView base, ByteView delta, uint8_t* out) {
  std::memcpy(out, base.data(), kDeltaPageSize);
  size_t pos = 0;
  size_t at = 0;  // page offset
  while (pos < delta.size()) {
    const size_t run = pos;
    size_t skip = 0, n = 0;
    if (!GetVarint(delta, &pos, &skip) || !GetVarint(delta, &pos, &n))
      return Status::Error("delta: bad or truncated run header at byte " + std::to_string(run));
    if (n == 0) return Status::Error("delta: empty run at byte " + std::to_string(run));
    if (at + skip + n > kDeltaPageSize)
      return Status::Error("delta: run at byte " + std::to_string(run) + " ends at " +
                           std::to_string(at + skip + n) + ", past the page end");
    if (delta.size() - pos < n)
      return Status::Error("delta: run at byte " + std::to_string(run) + " needs " +
                           std::to_string(n) + " bytes, " + std::to_string(delta.size() - pos) +
                           " left");
    at += skip;
    std::memcpy(out + at, delta.data() + pos, n);
    at += n;
    pos += n;
  }
  return Status::Ok();
}

}  // namespace gangmig::encode
