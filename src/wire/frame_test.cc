#include "wire/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace gangmig::wire {
namespace {

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(seed + i * 13);
  return b;
}

std::string Str(ByteView b) { return std::string(AsChars(b)); }

// Reads the first frame of `body`; returns its error message or "".
std::string FirstError(ByteView body) {
  FrameReader r(body);
  Frame f;
  Result<bool> res = r.Next(&f);
  return res.ok() ? "" : res.status().message();
}

TEST(WireFrame, RoundTripEveryType) {
  const Bytes data = Pattern(300, 1);
  const Bytes page = Pattern(kPageSize, 2);
  const Bytes rp = Pattern(5, 3);
  Bytes body;
  AppendVmOpen(&body, 3, R"({"name":"web1"})");
  AppendChannelOpen(&body, 3, 0);
  AppendData(&body, 3, 0, data);
  AppendPage(&body, 1023, 63, page);
  AppendRef(&body, 3, 2, 0xdeadbeef);
  AppendChannelEof(&body, 3, 2);
  AppendRpData(&body, 4, 1, rp);
  AppendRpEof(&body, 4, 1);
  AppendVmEvent(&body, 4, R"({"status":"completed"})");
  AppendAbort(&body, "disk full");
  AppendAbort(&body, "");
  AppendGoodbye(&body);

  FrameReader r(body);
  Frame f;
  auto next = [&](FrameType t) {
    Result<bool> res = r.Next(&f);
    ASSERT_TRUE(res.ok()) << res.status().message();
    ASSERT_TRUE(*res);
    ASSERT_EQ(f.type, t) << FrameTypeName(f.type);
  };
  next(FrameType::kVmOpen);
  EXPECT_EQ(f.vm, 3);
  EXPECT_EQ(Str(f.payload), R"({"name":"web1"})");
  next(FrameType::kChannelOpen);
  EXPECT_EQ(f.vm, 3);
  EXPECT_EQ(f.channel, 0);
  EXPECT_TRUE(f.payload.empty());
  next(FrameType::kData);
  EXPECT_EQ(Bytes(f.payload.begin(), f.payload.end()), data);
  next(FrameType::kPage);
  EXPECT_EQ(f.vm, 1023);
  EXPECT_EQ(f.channel, 63);
  EXPECT_EQ(Bytes(f.payload.begin(), f.payload.end()), page);
  next(FrameType::kRef);
  EXPECT_EQ(f.channel, 2);
  EXPECT_EQ(f.page_id, 0xdeadbeefu);
  next(FrameType::kChannelEof);
  EXPECT_EQ(f.channel, 2);
  next(FrameType::kRpData);
  EXPECT_EQ(f.vm, 4);
  EXPECT_EQ(f.channel, 1);
  EXPECT_EQ(Bytes(f.payload.begin(), f.payload.end()), rp);
  next(FrameType::kRpEof);
  EXPECT_EQ(f.channel, 1);
  next(FrameType::kVmEvent);
  EXPECT_EQ(Str(f.payload), R"({"status":"completed"})");
  next(FrameType::kAbort);
  EXPECT_EQ(Str(f.payload), "disk full");
  next(FrameType::kAbort);
  EXPECT_TRUE(f.payload.empty());
  next(FrameType::kGoodbye);
  Result<bool> end = r.Next(&f);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
  EXPECT_EQ(r.offset(), body.size());
}

TEST(WireFrame, EncodedSizes) {
  Bytes b;
  AppendPage(&b, 0, 0, Bytes(kPageSize));
  EXPECT_EQ(b.size(), kPageFrameSize);
  b.clear();
  AppendRef(&b, 0, 0, 1);
  EXPECT_EQ(b.size(), kRefFrameSize);
  b.clear();
  AppendData(&b, 0, 0, Bytes(kMaxDataLen));
  EXPECT_EQ(b.size(), kMaxFrameSize);
  b.clear();
  AppendChannelEof(&b, 0, 0);
  EXPECT_EQ(b.size(), kChannelFrameSize);
  b.clear();
  AppendGoodbye(&b);
  EXPECT_EQ(b, Bytes{0x21});
  b.clear();
  AppendPing(&b);
  EXPECT_EQ(b, Bytes{0x22});
  EXPECT_EQ(b.size(), kPingFrameSize);
}

TEST(WireFrame, AbortReasonIsCut) {
  Bytes b;
  AppendAbort(&b, std::string(70000, 'x'));
  FrameReader r(b);
  Frame f;
  ASSERT_TRUE(*r.Next(&f));
  EXPECT_EQ(f.payload.size(), kMaxJsonLen);
}

TEST(WireFrame, EveryTruncationIsAnError) {
  std::vector<Bytes> frames(11);
  AppendVmOpen(&frames[0], 1, "{}");
  AppendData(&frames[1], 1, 1, Pattern(9, 0));
  AppendPage(&frames[2], 1, 1, Pattern(kPageSize, 0));
  AppendRef(&frames[3], 1, 1, 7);
  AppendChannelOpen(&frames[4], 1, 1);
  AppendChannelEof(&frames[5], 1, 1);
  AppendRpData(&frames[6], 1, 1, Pattern(9, 0));
  AppendRpEof(&frames[7], 1, 1);
  AppendVmEvent(&frames[8], 1, "{}");
  AppendAbort(&frames[9], "why");
  AppendGoodbye(&frames[10]);
  for (const Bytes& frame : frames) {
    const std::string name = FrameTypeName(FrameType(frame[0]));
    for (size_t n = 1; n < frame.size(); n++) {
      std::string err = FirstError(ByteView(frame.data(), n));
      std::string prefix = "frame at offset 0: truncated " + name + " frame (need ";
      EXPECT_EQ(err.rfind(prefix, 0), 0u) << name << " prefix " << n << ": " << err;
      EXPECT_NE(err.find(", have " + std::to_string(n) + ")"), std::string::npos) << err;
    }
    EXPECT_EQ(FirstError(frame), "");
  }
}

TEST(WireFrame, TruncationTexts) {
  Bytes b;
  AppendData(&b, 1, 0, Pattern(4095, 0));
  EXPECT_EQ(FirstError(ByteView(b.data(), 10)),
            "frame at offset 0: truncated DATA frame (need 4103 bytes, have 10)");
  EXPECT_EQ(FirstError(ByteView(b.data(), 5)),
            "frame at offset 0: truncated DATA frame (need 8 bytes, have 5)");
  Bytes p;
  AppendRef(&p, 0, 0, 1);
  AppendPage(&p, 0, 0, Pattern(kPageSize, 0));
  p.resize(p.size() - 1);
  FrameReader r(p);
  Frame f;
  ASSERT_TRUE(*r.Next(&f));
  Result<bool> res = r.Next(&f);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().message(),
            "frame at offset 8: truncated PAGE frame (need 4100 bytes, have 4099)");
}

TEST(WireFrame, BadFields) {
  EXPECT_EQ(FirstError(Bytes{0x7f}), "frame at offset 0: unknown frame type 0x7f");
  EXPECT_EQ(FirstError(Bytes{0x00}), "frame at offset 0: unknown frame type 0x00");
  EXPECT_EQ(FirstError(Bytes{0x02, 0x13, 0x88, 0, 0, 0, 0, 1, 0xaa}),
            "frame at offset 0: vm id 5000 out of range (max 1023)");
  EXPECT_EQ(FirstError(Bytes{0x04, 0x04, 0x00, 0, 0, 0, 0, 1}),
            "frame at offset 0: vm id 1024 out of range (max 1023)");
  EXPECT_EQ(FirstError(Bytes{0x05, 0, 1, 70}),
            "frame at offset 0: channel 70 out of range (max 63)");
  EXPECT_EQ(FirstError(Bytes{0x02, 0, 1, 0, 0, 0, 0, 0}), "frame at offset 0: DATA length 0");
  EXPECT_EQ(FirstError(Bytes{0x10, 0, 1, 0, 0, 0, 0, 0}), "frame at offset 0: RP_DATA length 0");
  EXPECT_EQ(FirstError(Bytes{0x02, 0, 1, 0, 0, 0x10, 0, 1}),
            "frame at offset 0: DATA length 1048577 out of range (max 1048576)");
  EXPECT_EQ(FirstError(Bytes{0x01, 0, 1, 0, 0}), "frame at offset 0: VM_OPEN length 0");
  EXPECT_EQ(FirstError(Bytes{0x12, 0, 1, 0, 0}), "frame at offset 0: VM_EVENT length 0");

  // An error after good frames names the offset of the bad one.
  Bytes b;
  AppendRef(&b, 0, 0, 1);       // 8 bytes
  AppendChannelOpen(&b, 0, 1);  // 4 bytes
  b.push_back(0x7f);
  FrameReader r(b);
  Frame f;
  ASSERT_TRUE(*r.Next(&f));
  ASSERT_TRUE(*r.Next(&f));
  for (int i = 0; i < 2; i++) {  // the error repeats
    Result<bool> res = r.Next(&f);
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.status().message(), "frame at offset 12: unknown frame type 0x7f");
    EXPECT_EQ(r.offset(), 12u);
  }
}

TEST(WireFrame, EmptyBodyHasNoFrames) {
  FrameReader r{ByteView()};
  Frame f;
  Result<bool> res = r.Next(&f);
  ASSERT_TRUE(res.ok());
  EXPECT_FALSE(*res);
}

TEST(WireFrame, Directions) {
  EXPECT_TRUE(MaySend(Peer::kSender, FrameType::kPage));
  EXPECT_FALSE(MaySend(Peer::kReceiver, FrameType::kPage));
  EXPECT_TRUE(MaySend(Peer::kReceiver, FrameType::kRpData));
  EXPECT_FALSE(MaySend(Peer::kSender, FrameType::kVmEvent));
  EXPECT_TRUE(MaySend(Peer::kSender, FrameType::kAbort));
  EXPECT_TRUE(MaySend(Peer::kReceiver, FrameType::kAbort));
  EXPECT_FALSE(MaySend(Peer::kReceiver, FrameType::kGoodbye));
  EXPECT_TRUE(MaySend(Peer::kSender, FrameType::kPing));
  EXPECT_TRUE(MaySend(Peer::kReceiver, FrameType::kPing));
  EXPECT_FALSE(MaySend(Peer::kSender, FrameType(0x7f)));
  EXPECT_STREQ(FrameTypeName(FrameType::kChannelOpen), "CHANNEL_OPEN");
  EXPECT_EQ(FrameTypeName(FrameType(0x99)), nullptr);
}

// Random and mutated bodies: the reader never crashes, never loops, and every frame it
// returns lies inside the body and has in-range fields.
TEST(WireFrame, RandomBodiesNeverCrash) {
  static const uint8_t kTypes[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                   0x10, 0x11, 0x12, 0x20, 0x21, 0x22};
  Bytes valid;
  AppendVmOpen(&valid, 1, "{}");
  AppendData(&valid, 1, 0, Pattern(20, 0));
  AppendRef(&valid, 1, 0, 3);
  AppendAbort(&valid, "x");
  AppendGoodbye(&valid);
  std::mt19937 rng(99);
  for (int iter = 0; iter < 20000; iter++) {
    Bytes body;
    if (iter % 2 == 0) {
      body.resize(rng() % 64);
      for (uint8_t& c : body) c = (rng() % 4 == 0) ? kTypes[rng() % 12] : uint8_t(rng() % 8);
    } else {
      body = valid;
      for (int k = 0; k < 3; k++) body[rng() % body.size()] = uint8_t(rng());
      body.resize(rng() % (body.size() + 1));
    }
    FrameReader r(body);
    Frame f;
    for (size_t steps = 0; steps <= body.size(); steps++) {
      size_t before = r.offset();
      Result<bool> res = r.Next(&f);
      if (!res.ok() || !*res) break;
      ASSERT_GT(r.offset(), before);
      ASSERT_LE(r.offset(), body.size());
      ASSERT_LT(f.vm, kMaxVms);
      ASSERT_LT(f.channel, kMaxChannels);
      if (!f.payload.empty()) {
        size_t start = size_t(f.payload.data() - body.data());
        ASSERT_LE(start + f.payload.size(), r.offset());
      }
    }
  }
}

}  // namespace
}  // namespace gangmig::wire
