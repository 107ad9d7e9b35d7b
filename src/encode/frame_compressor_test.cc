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

TEST(FrameCompressor, RandomDataGoesRaw) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kAlways});
  Bytes out;
  EXPECT_FALSE(c.Transform(Frames(false), &out));
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

TEST(FrameCompressor, AutoKeepsTryingAfterIncompressibleBodies) {
  FrameCompressor c({.mode = CompressionOptions::Mode::kAuto, .busy_backlog = 0});
  Bytes out;
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(c.Transform(Frames(false, i), &out));
  EXPECT_EQ(c.stats().not_smaller, 10u);  // each was tried, none shrank
  // The first compressible body after them is compressed: no back-off that would send
  // the compressible memory following random memory raw.
  EXPECT_TRUE(c.Transform(Frames(true), &out));
  EXPECT_EQ(c.stats().compressed, 1u);
  EXPECT_GT(c.stats().raw_tried, c.stats().raw_in);
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
