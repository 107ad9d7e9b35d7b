#include "encode/frame_compressor.h"

#include <gtest/gtest.h>

#include <random>

#include "encode/zstd_codec.h"
#include "wire/frame.h"

namespace gangmig::encode {
namespace {

Bytes Frames(bool compressible, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Bytes f, page(wire::kPageSize);
  for (int i = 0; i < 32; ++i) {
    for (size_t k = 0; k < page.size(); ++k)
      page[k] = compressible ? uint8_t(k % 17 == 0 ? rng() : k / 64) : uint8_t(rng());
    wire::AppendPage(&f, 1, 0, page);
    wire::AppendRef(&f, 1, 0, uint32_t(i));
  }
  return f;
}

// Decodes a ZFRAMES frame the way the receiver does and returns the frames inside.
Bytes Expand(const Bytes& body) {
  wire::FrameReader r(body);
  wire::Frame f;
  EXPECT_TRUE(*r.Next(&f));
  EXPECT_EQ(f.type, wire::FrameType::kZFrames);
  EXPECT_EQ(r.offset(), body.size());
  ZstdDecompressor z(wire::kMaxRecordBody);
  Bytes out;
  Status st = z.Decompress(f.payload.subspan(4), LoadBE32(f.payload.data()), &out);
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

TEST(FrameCompressor, AlwaysModeRoundTrips) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kAlways});
  Bytes body = Frames(true), out;
  ASSERT_TRUE(c.Transform(body, &out));
  EXPECT_LT(out.size(), body.size() / 2);
  EXPECT_EQ(Expand(out), body);
  EXPECT_EQ(c.stats().compressed, 1u);
  EXPECT_EQ(c.stats().raw_in, body.size());
  EXPECT_EQ(c.stats().zframes_out, out.size());
}

// kAlways gives random bodies to zstd too (no sampled skip), and sends them raw.
TEST(FrameCompressor, RandomDataGoesRaw) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kAlways});
  Bytes out;
  EXPECT_FALSE(c.Transform(Frames(false), &out));
  EXPECT_EQ(c.stats().skipped_random, 0u);
  EXPECT_EQ(c.stats().not_smaller, 1u);
}

TEST(FrameCompressor, OffModeNeverCompresses) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kOff});
  Bytes out;
  EXPECT_FALSE(c.Transform(Frames(true), &out));
}

TEST(FrameCompressor, AutoSkipsOnlyAnIdleLinkFasterThanTheCompressor) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kAuto, .busy_backlog = 1000});
  Bytes out;
  c.SetBacklog(0);  // idle link, rates unknown: compress
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(c.Transform(Frames(true, i), &out));
  ASSERT_GT(c.stats().raw_in, 1u << 20);  // the compressor's speed is now measured
  c.SetLinkRate(1e6);                     // a link slower than zstd: still compress
  EXPECT_TRUE(c.Transform(Frames(true), &out));
  c.SetLinkRate(1e15);  // a link far faster than zstd, and idle: send raw
  EXPECT_FALSE(c.Transform(Frames(true), &out));
  EXPECT_EQ(c.stats().skipped_idle, 1u);
  c.SetBacklog(5000);  // ... unless data waits for it anyway
  EXPECT_TRUE(c.Transform(Frames(true), &out));
}

TEST(FrameCompressor, AutoSkipsRandomBodiesOneByOne) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kAuto, .busy_backlog = 0});
  Bytes out;
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(c.Transform(Frames(false, i), &out));
  EXPECT_EQ(c.stats().skipped_random, 10u);  // zstd never ran on them
  EXPECT_EQ(c.stats().not_smaller, 0u);
  EXPECT_EQ(c.stats().raw_tried, 0u);
  // The first compressible body after them is compressed: the decision is per body, so
  // compressible memory that follows random memory is not sent raw.
  EXPECT_TRUE(c.Transform(Frames(true), &out));
  EXPECT_EQ(c.stats().compressed, 1u);
}

TEST(FrameCompressor, LooksRandomOnlyForRandomLookingSamples) {
  EXPECT_TRUE(FrameCompressor::LooksRandom(Frames(false)));
  EXPECT_FALSE(FrameCompressor::LooksRandom(Frames(true)));
  // Half random pages, half compressible ones: zstd still saves a lot, so it runs.
  Bytes mixed = Frames(false);
  Bytes tail = Frames(true);
  mixed.insert(mixed.end(), tail.begin(), tail.end());
  EXPECT_FALSE(FrameCompressor::LooksRandom(mixed));
  // Too small a body for a trustworthy sample (fewer than 1024 sampled bytes).
  std::mt19937 rng(7);
  Bytes small(16 * 1024 - 1);
  for (auto& b : small) b = uint8_t(rng());
  EXPECT_FALSE(FrameCompressor::LooksRandom(small));
  Bytes big(64 * 1024);
  for (auto& b : big) b = uint8_t(rng());
  EXPECT_TRUE(FrameCompressor::LooksRandom(big));
  // Text-like bytes (64 distinct values): at most 6 bits per byte.
  for (auto& b : big) b = uint8_t(' ' + rng() % 64);
  EXPECT_FALSE(FrameCompressor::LooksRandom(big));
}

// Compressed data (here zstd's own output of guest-like pages) looks random too, and
// gains nothing from a second pass.
TEST(FrameCompressor, LooksRandomForAlreadyCompressedData) {
  ZstdCompressor zc;
  Bytes z;
  for (int i = 0; z.size() < 256 * 1024; ++i) {
    Bytes raw = Frames(true, i), part(ZstdCompressor::Bound(raw.size()));
    part.resize(zc.Compress(raw, 19, part.data(), part.size()));
    z.insert(z.end(), part.begin(), part.end());
  }
  Bytes again(ZstdCompressor::Bound(z.size()));
  size_t n = zc.Compress(z, 1, again.data(), again.size());
  EXPECT_GT(n * 50, z.size() * 49) << "zstd saves 2% on its own output";
  EXPECT_TRUE(FrameCompressor::LooksRandom(z));
}

TEST(ZstdDecompressor, RejectsBadInputWithExactErrors) {
  ZstdCompressor zc;
  Bytes raw(5000, 'a'), z(ZstdCompressor::Bound(raw.size()));
  z.resize(zc.Compress(raw, 1, z.data(), z.size()));
  ZstdDecompressor d(8192);
  Bytes out;
  EXPECT_EQ(d.Decompress(z, 0, &out).message(), "zstd: raw length 0 out of range (max 8192)");
  EXPECT_EQ(d.Decompress(z, 9000, &out).message(), "zstd: raw length 9000 out of range (max 8192)");
  EXPECT_EQ(d.Decompress(z, 4000, &out).message(), "zstd: Destination buffer is too small");
  EXPECT_EQ(d.Decompress(z, 6000, &out).message(),
            "zstd: decompressed to 5000 bytes, expected 6000");
  Bytes cut(z.begin(), z.end() - 3);
  EXPECT_EQ(d.Decompress(cut, 5000, &out).message(), "zstd: Src size is incorrect");
  Bytes junk(z.size(), 0x42);
  EXPECT_EQ(d.Decompress(junk, 5000, &out).message(), "zstd: Unknown frame descriptor");
  ASSERT_TRUE(d.Decompress(z, 5000, &out).ok());
  EXPECT_EQ(out, raw);
}

}  // namespace
}  // namespace gangmig::encode
