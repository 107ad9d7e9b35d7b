// The destination core's two-step ZFRAMES path (Inflate anywhere, OnInflated in order)
// against its one-step OnFrame: same output, same statistics, same errors, and the
// checks that need the core's state come before the inflate result is looked at.
#include "core/dest_core.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "encode/zstd_codec.h"
#include "wire/frame.h"

namespace gangmig::core {
namespace {

// Records what the core gives out, as text.
struct Collect : DestCore::Output {
  std::string bytes;
  int controls = 0;
  Status OnStreamBytes(const wire::Frame&, ByteView b) override {
    bytes.append(AsChars(b));
    return Status::Ok();
  }
  Status OnControl(const wire::Frame&) override {
    ++controls;
    return Status::Ok();
  }
};

// One ZFRAMES frame holding `frames`, as the sender makes it.
Bytes ZFrames(ByteView frames) {
  encode::ZstdCompressor z;
  const size_t head = wire::kZFramesHeaderSize + wire::kZFramesRawLenSize;
  Bytes out(head + encode::ZstdCompressor::Bound(frames.size()));
  size_t n = z.Compress(frames, 1, out.data() + head, out.size() - head);
  out.resize(head + n);
  wire::PutZFramesHeader(out.data(), n, frames.size());
  return out;
}

wire::Frame OnlyFrame(const Bytes& body) {
  wire::FrameReader reader(body);
  wire::Frame f;
  EXPECT_TRUE(*reader.Next(&f));
  EXPECT_EQ(reader.offset(), body.size());
  return f;
}

Bytes SomeFrames() {
  Bytes f;
  wire::AppendData(&f, 0, 0, AsBytes("head|"));
  wire::AppendPage(&f, 0, 0, Bytes(4096, 'p'));
  wire::AppendRef(&f, 0, 0, 0);
  wire::AppendChannelEof(&f, 0, 0);
  return f;
}

const uint16_t kZstd = wire::kFeatureZstd;

TEST(DestCoreTest, InflateOnAnotherThreadThenOnInflatedMatchesOnFrame) {
  Bytes body = ZFrames(SomeFrames());
  wire::Frame zf = OnlyFrame(body);

  DestCore inline_core(kZstd);
  Collect inline_out;
  ASSERT_TRUE(inline_core.OnFrame(zf, &inline_out).ok());

  Bytes frames;
  Status inflated;
  std::thread worker([&] {
    encode::ZstdDecompressor zstd(wire::kMaxRecordBody);
    inflated = DestCore::Inflate(zf, &zstd, &frames);
  });
  worker.join();
  DestCore core(kZstd);
  Collect out;
  ASSERT_TRUE(core.OnInflated(zf, inflated, frames, &out).ok());

  EXPECT_EQ(out.bytes, "head|" + std::string(4096, 'p') + std::string(4096, 'p'));
  EXPECT_EQ(out.bytes, inline_out.bytes);
  EXPECT_EQ(out.controls, 1);
  EXPECT_EQ(core.pages(), 1u);
  EXPECT_EQ(core.stats().zframes, 1u);
  EXPECT_EQ(core.stats().zframes_bytes, body.size());
  EXPECT_EQ(core.stats().zframes_raw, SomeFrames().size());
  EXPECT_EQ(core.stats().zframes_bytes, inline_core.stats().zframes_bytes);
  EXPECT_EQ(core.stats().refs, inline_core.stats().refs);
}

TEST(DestCoreTest, RawLengthAboveOneRecordBodyIsRefusedBeforeZstdRuns) {
  Bytes body = ZFrames(SomeFrames());
  StoreBE32(body.data() + wire::kZFramesHeaderSize, uint32_t(wire::kMaxRecordBody + 1));
  wire::Frame zf = OnlyFrame(body);
  const std::string want = "ZFRAMES: zstd: raw length 1048641 out of range (max 1048640)";
  encode::ZstdDecompressor zstd(wire::kMaxRecordBody);
  Bytes frames;
  Status inflated = DestCore::Inflate(zf, &zstd, &frames);
  EXPECT_EQ(inflated.message(), want);
  EXPECT_TRUE(frames.empty());
  DestCore core(kZstd);
  Collect out;
  EXPECT_EQ(core.OnInflated(zf, inflated, frames, &out).message(), want);
  DestCore inline_core(kZstd);
  EXPECT_EQ(inline_core.OnFrame(zf, &out).message(), want);
  EXPECT_EQ(out.bytes, "");
}

TEST(DestCoreTest, CorruptZstdGivesTheSameErrorBothWays) {
  Bytes body = ZFrames(SomeFrames());
  body[wire::kZFramesHeaderSize + wire::kZFramesRawLenSize] ^= 0xff;  // zstd's magic
  wire::Frame zf = OnlyFrame(body);
  encode::ZstdDecompressor zstd(wire::kMaxRecordBody);
  Bytes frames;
  Status inflated = DestCore::Inflate(zf, &zstd, &frames);
  DestCore core(kZstd), inline_core(kZstd);
  Collect out;
  EXPECT_EQ(core.OnInflated(zf, inflated, frames, &out).message(),
            "ZFRAMES: zstd: Unknown frame descriptor");
  EXPECT_EQ(inline_core.OnFrame(zf, &out).message(), "ZFRAMES: zstd: Unknown frame descriptor");
  EXPECT_EQ(core.stats().zframes, 0u);
}

// A receiver that inflated ahead still gets the errors of the checks that come first.
TEST(DestCoreTest, OnInflatedChecksFeatureAndGoodbyeBeforeTheInflateResult) {
  Bytes body = ZFrames(SomeFrames());
  wire::Frame zf = OnlyFrame(body);
  Status failed = Status::Error("ZFRAMES: zstd: Unknown frame descriptor");
  Collect out;
  DestCore no_zstd(0);
  EXPECT_EQ(no_zstd.OnInflated(zf, failed, {}, &out).message(),
            "sender sent a ZFRAMES frame, but zstd was not negotiated");
  EXPECT_EQ(no_zstd.OnFrame(zf, &out).message(),
            "sender sent a ZFRAMES frame, but zstd was not negotiated");
  DestCore core(kZstd);
  Bytes bye;
  wire::AppendGoodbye(&bye);
  ASSERT_TRUE(core.OnFrame(OnlyFrame(bye), &out).ok());
  EXPECT_EQ(core.OnInflated(zf, failed, {}, &out).message(),
            "sender sent a ZFRAMES frame after GOODBYE");
  EXPECT_EQ(out.bytes, "");
}

TEST(DestCoreTest, ZFramesInsideZFramesIsRefused) {
  Bytes data;
  wire::AppendData(&data, 0, 0, Bytes(20000, 'x'));
  Bytes body = ZFrames(ZFrames(data));
  wire::Frame zf = OnlyFrame(body);
  encode::ZstdDecompressor zstd(wire::kMaxRecordBody);
  Bytes frames;
  Status inflated = DestCore::Inflate(zf, &zstd, &frames);
  ASSERT_TRUE(inflated.ok());
  DestCore core(kZstd), inline_core(kZstd);
  Collect out;
  EXPECT_EQ(core.OnInflated(zf, inflated, frames, &out).message(), "ZFRAMES inside ZFRAMES");
  EXPECT_EQ(inline_core.OnFrame(zf, &out).message(), "ZFRAMES inside ZFRAMES");
}

}  // namespace
}  // namespace gangmig::core
