#include "migrate/seal_pipeline.h"

#include <gtest/gtest.h>

#include <random>

#include "wire/frame.h"

namespace gangmig::migrate {
namespace {

const Bytes kKey(32, 0x11);

// Everything queued, as the link would carry it.
Bytes Drain(net::OutQueue* q) {
  Bytes all;
  q->DrainTo(&all);
  return all;
}

// Pages that compress (text-like) and pages that do not (random), mixed, with DATA
// frames of many sizes between them.
void AppendWorkload(Bytes* frames, std::mt19937* rng, int n) {
  Bytes page(wire::kPageSize);
  for (int i = 0; i < n; ++i) {
    bool random = (*rng)() % 3 == 0;
    for (size_t k = 0; k < page.size(); ++k)
      page[k] = random ? uint8_t((*rng)()) : uint8_t("gang migration "[(k + i) % 15]);
    wire::AppendPage(frames, uint16_t(i % 3), 0, page);
    Bytes data(1 + (*rng)() % 3000, uint8_t(i));
    wire::AppendData(frames, uint16_t(i % 3), 0, data);
  }
}

// The records one thread makes, sealing and compressing inline (RecordWriter with the
// compressor as its BodyTransform): the reference the pipeline must reproduce.
Bytes InlineRecords(uint32_t seed, encode::CompressionOptions::Mode mode) {
  wire::RecordSealer sealer(kKey);
  wire::RecordWriter writer(&sealer);
  encode::FrameCompressor z({.mode = mode});
  writer.SetTransform(&z);
  std::mt19937 rng(seed);
  Bytes out;
  for (int round = 0; round < 30; ++round) {
    AppendWorkload(writer.frames(), &rng, 40);
    writer.SealIfFull(&out);
  }
  writer.Flush(&out);
  return out;
}

Bytes PipelineRecords(uint32_t seed, encode::CompressionOptions::Mode mode, int threads,
                      encode::CompressionStats* stats = nullptr) {
  wire::RecordSealer sealer(kKey);
  net::OutQueue q;
  q.KeepSpares(2);
  encode::FrameCompressor z({.mode = mode});
  SealPipeline seal(&sealer, &z, threads, &q);
  wire::RecordWriter writer(&seal);
  std::mt19937 rng(seed);
  for (int round = 0; round < 30; ++round) {
    AppendWorkload(writer.frames(), &rng, 40);
    writer.SealIfFull(nullptr);
    seal.Collect(/*wait=*/false);
  }
  writer.Flush(nullptr);
  seal.Collect(/*wait=*/true);
  EXPECT_EQ(seal.pending_bytes(), 0u);
  EXPECT_EQ(seal.pending_bodies(), 0u);
  if (stats) *stats = z.stats();
  return Drain(&q);
}

class SealPipelineThreads : public ::testing::TestWithParam<int> {};

TEST_P(SealPipelineThreads, RecordsAreExactlyThoseOfOneThreadCompressingInline) {
  Bytes want = InlineRecords(7, encode::CompressionOptions::Mode::kAlways);
  encode::CompressionStats stats;
  Bytes got = PipelineRecords(7, encode::CompressionOptions::Mode::kAlways, GetParam(), &stats);
  EXPECT_GT(stats.compressed, 0u);  // the comparison covers compressed records
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
}

TEST_P(SealPipelineThreads, WithoutCompressionRecordsAreSealedAsTheyAre) {
  Bytes want = InlineRecords(3, encode::CompressionOptions::Mode::kOff);
  EXPECT_TRUE(PipelineRecords(3, encode::CompressionOptions::Mode::kOff, GetParam()) == want);
}

INSTANTIATE_TEST_SUITE_P(Threads, SealPipelineThreads, ::testing::Values(0, 1, 3));

TEST(SealPipeline, RecordsOpenToTheFramesWrittenInOrder) {
  wire::RecordSealer sealer(kKey);
  net::OutQueue q;
  encode::FrameCompressor z({.mode = encode::CompressionOptions::Mode::kAlways});
  SealPipeline seal(&sealer, &z, 4, &q);
  wire::RecordWriter writer(&seal, 4096);  // small bodies: many in flight at once
  Bytes written;
  for (uint32_t i = 0; i < 2000; ++i) {
    Bytes data(64, uint8_t(i));
    StoreBE32(data.data(), i);
    wire::AppendData(writer.frames(), 0, 0, data);
    wire::AppendData(&written, 0, 0, data);
    writer.SealIfFull(nullptr);
    if (i % 7 == 0) seal.Collect(/*wait=*/false);
  }
  writer.Flush(nullptr);
  seal.Collect(/*wait=*/true);
  wire::RecordOpener opener(kKey);
  opener.Feed(Drain(&q));
  Bytes body, opened;
  for (;;) {
    auto r = opener.Next(&body);
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (!*r) break;
    wire::FrameReader reader(body);
    wire::Frame f;
    while (*reader.Next(&f)) {
      if (f.type == wire::FrameType::kZFrames) {
        encode::ZstdDecompressor d(wire::kMaxRecordBody);
        Bytes raw;
        ASSERT_TRUE(d.Decompress(f.payload.subspan(wire::kZFramesRawLenSize),
                                 LoadBE32(f.payload.data()), &raw)
                        .ok());
        PutBytes(&opened, raw);
      } else {
        PutBytes(&opened, body);
        break;
      }
    }
  }
  EXPECT_TRUE(opened == written);
  EXPECT_GT(z.stats().compressed, 10u);
}

}  // namespace
}  // namespace gangmig::migrate
