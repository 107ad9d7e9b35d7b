#include "wire/record.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "wire/frame.h"

namespace gangmig::wire {
namespace {

const Bytes kKey(32, 0x11);
const Bytes kOtherKey(32, 0x22);

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(seed + i * 31 + (i >> 8));
  return b;
}

Bytes SealAll(ByteView key, const std::vector<Bytes>& bodies) {
  RecordSealer sealer(key);
  Bytes out;
  for (const Bytes& b : bodies) sealer.Seal(b, &out);
  return out;
}

// Feeds `stream` in pieces of `chunk` bytes and returns every body Next() produced;
// fails the test on any error.
std::vector<Bytes> OpenAll(ByteView stream, size_t chunk) {
  RecordOpener opener(kKey);
  std::vector<Bytes> got;
  for (size_t pos = 0; pos < stream.size(); pos += chunk) {
    opener.Feed(stream.subspan(pos, std::min(chunk, stream.size() - pos)));
    Bytes body;
    for (;;) {
      Result<bool> r = opener.Next(&body);
      EXPECT_TRUE(r.ok()) << r.status().message();
      if (!r.ok() || !*r) break;
      got.push_back(body);
    }
  }
  EXPECT_TRUE(opener.AtEnd().ok());
  EXPECT_EQ(opener.buffered(), 0u);
  return got;
}

// The outcome of feeding `stream` at once and calling Next() until it stops:
// "" when it only ran out of bytes, else the error message. Counts bodies.
std::string Drain(ByteView key, ByteView stream, int* bodies = nullptr) {
  RecordOpener opener(key);
  opener.Feed(stream);
  Bytes body;
  int n = 0;
  for (;;) {
    Result<bool> r = opener.Next(&body);
    if (!r.ok()) {
      if (bodies) *bodies = n;
      return r.status().message();
    }
    if (!*r) break;
    n++;
  }
  if (bodies) *bodies = n;
  return "";
}

TEST(WireRecord, RoundTrip) {
  std::vector<Bytes> bodies = {Pattern(1, 1), Pattern(100, 2), Pattern(4100, 3),
                               Pattern(kMaxRecordBody, 4), Pattern(7, 5)};
  Bytes stream = SealAll(kKey, bodies);
  size_t total = 0;
  for (const Bytes& b : bodies) total += b.size() + kRecordOverhead;
  EXPECT_EQ(stream.size(), total);
  EXPECT_EQ(OpenAll(stream, stream.size()), bodies);
  EXPECT_EQ(OpenAll(stream, 4096), bodies);
  EXPECT_EQ(OpenAll(stream, 65537), bodies);
}

TEST(WireRecord, ByteByByte) {
  std::vector<Bytes> bodies = {Pattern(3, 1), Pattern(50, 2), Pattern(1, 3)};
  EXPECT_EQ(OpenAll(SealAll(kKey, bodies), 1), bodies);
}

TEST(WireRecord, SealerAndOpenerCount) {
  RecordSealer sealer(kKey);
  Bytes out;
  sealer.Seal(Pattern(10, 0), &out);
  sealer.Seal(Pattern(10, 1), &out);
  EXPECT_EQ(sealer.records(), 2u);
  RecordOpener opener(kKey);
  opener.Feed(out);
  Bytes body;
  ASSERT_TRUE(*opener.Next(&body));
  ASSERT_TRUE(*opener.Next(&body));
  ASSERT_FALSE(*opener.Next(&body));
  EXPECT_EQ(opener.records(), 2u);
}

TEST(WireRecord, EveryTruncationNeedsMoreBytes) {
  Bytes stream = SealAll(kKey, {Pattern(60, 9)});
  for (size_t n = 0; n < stream.size(); n++) {
    RecordOpener opener(kKey);
    opener.Feed(ByteView(stream.data(), n));
    Bytes body;
    Result<bool> r = opener.Next(&body);
    ASSERT_TRUE(r.ok()) << "prefix " << n << ": " << r.status().message();
    EXPECT_FALSE(*r) << "prefix " << n;
    EXPECT_EQ(opener.buffered(), n);
    EXPECT_EQ(opener.AtEnd().ok(), n == 0) << "prefix " << n;
  }
}

TEST(WireRecord, AtEndReportsAPartialRecord) {
  Bytes stream = SealAll(kKey, {Pattern(60, 9), Pattern(60, 9)});
  RecordOpener opener(kKey);
  opener.Feed(ByteView(stream.data(), 80 + 30));
  Bytes body;
  ASSERT_TRUE(*opener.Next(&body));
  ASSERT_FALSE(*opener.Next(&body));
  EXPECT_EQ(opener.AtEnd().message(),
            "record 1: stream ended inside the record (have 30 of 80 bytes)");
  RecordOpener opener2(kKey);
  opener2.Feed(ByteView(stream.data(), 2));
  EXPECT_EQ(opener2.AtEnd().message(),
            "record 0: stream ended inside the record (have 2 of at least 21 bytes)");
}

// Flipping bits of any byte of a record never yields a body: the tag or the length
// check refuses it (given enough following bytes to complete a lengthened record).
TEST(WireRecord, EveryOneByteCorruptionIsRefused) {
  const Bytes body = Pattern(40, 7);
  const Bytes record = SealAll(kKey, {body});
  const Bytes filler(kMaxRecordBody + kRecordOverhead, 0);
  for (size_t i = 0; i < record.size(); i++) {
    for (uint8_t x : {0x01, 0x02, 0x10, 0x80, 0xff}) {
      Bytes stream = record;
      stream[i] ^= x;
      stream.insert(stream.end(), filler.begin(), filler.end());
      int bodies = 0;
      std::string err = Drain(kKey, stream, &bodies);
      EXPECT_EQ(bodies, 0) << "byte " << i << " ^ " << int(x);
      bool tag = err == "record 0: bad authentication tag";
      bool len = err.rfind("record 0: bad length ", 0) == 0;
      EXPECT_TRUE(tag || len) << "byte " << i << " ^ " << int(x) << ": '" << err << "'";
    }
  }
}

TEST(WireRecord, CorruptionInALaterRecordKeepsEarlierOnes) {
  Bytes stream = SealAll(kKey, {Pattern(10, 1), Pattern(10, 2)});
  stream[30 + 4 + 3] ^= 0x20;
  int bodies = 0;
  EXPECT_EQ(Drain(kKey, stream, &bodies), "record 1: bad authentication tag");
  EXPECT_EQ(bodies, 1);
}

TEST(WireRecord, BadLengthIsRefusedBeforeTheBodyArrives) {
  RecordOpener opener(kKey);
  opener.Feed(Bytes{0x00, 0x10, 0x00, 0x41});  // 1 MiB + 65
  Bytes body;
  Result<bool> r = opener.Next(&body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "record 0: bad length 1048641 (max 1048640)");
  EXPECT_EQ(Drain(kKey, Bytes{0, 0, 0, 0, 1, 2, 3}), "record 0: bad length 0 (max 1048640)");
  EXPECT_EQ(Drain(kKey, Bytes{0xff, 0xff, 0xff, 0xff}),
            "record 0: bad length 4294967295 (max 1048640)");
}

TEST(WireRecord, ReorderedRecordsAreRefused) {
  RecordSealer sealer(kKey);
  Bytes a, b;
  sealer.Seal(Pattern(20, 1), &a);
  sealer.Seal(Pattern(20, 2), &b);
  Bytes ba = b;
  ba.insert(ba.end(), a.begin(), a.end());
  EXPECT_EQ(Drain(kKey, ba), "record 0: bad authentication tag");
}

TEST(WireRecord, ReplayedRecordIsRefused) {
  Bytes a = SealAll(kKey, {Pattern(20, 1)});
  Bytes aa = a;
  aa.insert(aa.end(), a.begin(), a.end());
  int bodies = 0;
  EXPECT_EQ(Drain(kKey, aa, &bodies), "record 1: bad authentication tag");
  EXPECT_EQ(bodies, 1);
}

TEST(WireRecord, DroppedRecordIsDetected) {
  RecordSealer sealer(kKey);
  Bytes a, b;
  sealer.Seal(Pattern(20, 1), &a);
  sealer.Seal(Pattern(20, 2), &b);
  EXPECT_EQ(Drain(kKey, b), "record 0: bad authentication tag");
}

TEST(WireRecord, OtherDirectionKeyIsRefused) {
  EXPECT_EQ(Drain(kOtherKey, SealAll(kKey, {Pattern(20, 1)})), "record 0: bad authentication tag");
}

TEST(WireRecord, FailureIsFinal) {
  Bytes bad = SealAll(kKey, {Pattern(20, 1)});
  bad[10] ^= 1;
  RecordOpener opener(kKey);
  opener.Feed(bad);
  Bytes body;
  ASSERT_FALSE(opener.Next(&body).ok());
  opener.Feed(SealAll(kKey, {Pattern(20, 1)}));
  Result<bool> r = opener.Next(&body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "record 0: bad authentication tag");
  EXPECT_EQ(opener.AtEnd().message(), "record 0: bad authentication tag");
}

TEST(WireRecord, RandomBytesNeverYieldABody) {
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 2000; iter++) {
    Bytes junk(rng() % 300);
    for (uint8_t& c : junk) c = uint8_t(rng());
    if (iter % 2 == 0 && junk.size() >= 4) {  // plausible small lengths
      junk[0] = junk[1] = 0;
      junk[2] &= 0x01;
    }
    int bodies = 0;
    Drain(kKey, junk, &bodies);
    EXPECT_EQ(bodies, 0);
  }
}

// ---- RecordWriter --------------------------------------------------------------------

const Bytes kWriterKey(32, 0x33);

// Opens every record of `stream`; checks each body is a whole number of valid frames
// and appends a copy of each frame's encoding to *frames. Returns the body sizes.
std::vector<size_t> OpenRecords(ByteView stream, std::vector<Bytes>* frames) {
  RecordOpener opener(kWriterKey);
  opener.Feed(stream);
  std::vector<size_t> sizes;
  Bytes body;
  for (;;) {
    Result<bool> r = opener.Next(&body);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok() || !*r) break;
    sizes.push_back(body.size());
    FrameReader reader(body);
    Frame f;
    for (;;) {
      size_t start = reader.offset();
      Result<bool> fr = reader.Next(&f);
      EXPECT_TRUE(fr.ok()) << fr.status().message();
      if (!fr.ok() || !*fr) break;
      frames->emplace_back(body.begin() + ptrdiff_t(start),
                           body.begin() + ptrdiff_t(reader.offset()));
    }
  }
  EXPECT_TRUE(opener.AtEnd().ok());
  return sizes;
}

TEST(WireRecordWriter, SealsWhenTheTargetIsReached) {
  RecordSealer sealer(kWriterKey);
  RecordWriter w(&sealer, 100);
  Bytes out;
  std::vector<Bytes> sent;
  for (uint32_t i = 0; i < 40; i++) {
    size_t before = w.frames()->size();
    AppendRef(w.frames(), 1, 0, i);  // 8 bytes each
    sent.emplace_back(w.frames()->begin() + ptrdiff_t(before), w.frames()->end());
    w.SealIfFull(&out);
    EXPECT_LT(w.pending(), 100u);
  }
  EXPECT_EQ(sealer.records(), 3u);  // 3 x 13 frames (104 bytes); 1 frame pending
  EXPECT_EQ(w.pending(), 8u);
  w.Flush(&out);
  EXPECT_EQ(w.pending(), 0u);
  std::vector<Bytes> got;
  EXPECT_EQ(OpenRecords(out, &got), (std::vector<size_t>{104, 104, 104, 8}));
  EXPECT_EQ(got, sent);
}

// A full record is swapped into an empty `out`, whose buffer becomes the next pending
// body: handing back the previous record's buffer means no allocation per record.
TEST(WireRecordWriter, SealingIntoASpareReusesItsBuffer) {
  RecordSealer sealer(kWriterKey);
  RecordWriter w(&sealer, 64);
  Bytes spare;
  spare.reserve(1 << 17);  // the room Reset() wants: 2 x 64 + overhead + 64 KiB
  const uint8_t* spare_data = spare.data();
  const uint8_t* first_pending = w.frames()->data();
  Bytes wire;
  std::vector<Bytes> sent;
  for (uint32_t i = 0; i < 24; i++) {
    size_t before = w.frames()->size();
    AppendRef(w.frames(), 2, 0, i);
    sent.emplace_back(w.frames()->begin() + ptrdiff_t(before), w.frames()->end());
    w.SealIfFull(&spare);
    if (!spare.empty()) {  // a record: "send" it, then hand its buffer back
      if (sealer.records() == 1) {
        EXPECT_EQ(spare.data(), first_pending);     // the record was not copied
        EXPECT_EQ(w.frames()->data(), spare_data);  // the spare is the new pending body
      }
      PutBytes(&wire, spare);
      spare.clear();
    }
  }
  EXPECT_EQ(sealer.records(), 3u);  // 3 x 8 frames of 8 bytes
  std::vector<Bytes> got;
  EXPECT_EQ(OpenRecords(wire, &got), (std::vector<size_t>{64, 64, 64}));
  EXPECT_EQ(got, sent);
}

TEST(WireRecordWriter, FlushOfNothingWritesNothing) {
  RecordSealer sealer(kWriterKey);
  RecordWriter w(&sealer);
  Bytes out;
  w.Flush(&out);
  w.SealIfFull(&out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(sealer.records(), 0u);
}

TEST(WireRecordWriter, BigFrameOnAFullBodyStartsANewRecord) {
  RecordSealer sealer(kWriterKey);
  RecordWriter w(&sealer);  // 256 KiB target
  Bytes out;
  Bytes page(kPageSize, 0x77);
  for (int i = 0; i < 64; i++) {  // 64 * 4100 = 262400 >= 262144: sealed at the 64th
    AppendPage(w.frames(), 0, 0, page);
    w.SealIfFull(&out);
  }
  for (int i = 0; i < 60; i++) {
    AppendPage(w.frames(), 0, 0, page);
    w.SealIfFull(&out);
  }
  ASSERT_EQ(w.pending(), 60 * kPageFrameSize);
  AppendData(w.frames(), 0, 0, Bytes(kMaxDataLen, 0x55));  // would make 1.25 MiB
  w.SealIfFull(&out);
  EXPECT_EQ(w.pending(), 0u);
  std::vector<Bytes> got;
  EXPECT_EQ(OpenRecords(out, &got),
            (std::vector<size_t>{64 * kPageFrameSize, 60 * kPageFrameSize, kMaxFrameSize}));
  EXPECT_EQ(got.size(), 125u);
}

TEST(WireRecordWriter, ManyFramesWithoutCallsAreCutAtFrameBoundaries) {
  RecordSealer sealer(kWriterKey);
  RecordWriter w(&sealer);
  Bytes out;
  Bytes page(kPageSize, 0x11);
  for (int i = 0; i < 600; i++) AppendPage(w.frames(), 2, 1, page);  // 2.46 MB
  AppendGoodbye(w.frames());
  w.Flush(&out);
  std::vector<Bytes> got;
  std::vector<size_t> sizes = OpenRecords(out, &got);
  ASSERT_EQ(got.size(), 601u);
  EXPECT_EQ(got.back(), Bytes{uint8_t(FrameType::kGoodbye)});
  size_t per = kMaxRecordBody / kPageFrameSize * kPageFrameSize;  // 255 pages
  EXPECT_EQ(sizes, (std::vector<size_t>{per, per, 90 * kPageFrameSize + 1}));
}

}  // namespace
}  // namespace gangmig::wire
