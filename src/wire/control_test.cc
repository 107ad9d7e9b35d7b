#include "wire/control.h"

#include <gtest/gtest.h>

namespace gangmig::wire {
namespace {

std::string OpenError(std::string_view json) {
  auto r = ParseVmOpen(AsBytes(json));
  return r.ok() ? "ok" : r.status().message();
}

std::string EventError(std::string_view json) {
  auto r = ParseVmEvent(AsBytes(json));
  return r.ok() ? "ok" : r.status().message();
}

TEST(WireControl, VmOpenRoundTrips) {
  EXPECT_EQ(SerializeVmOpen({"web-1"}), R"({"name":"web-1"})");
  auto r = ParseVmOpen(AsBytes(SerializeVmOpen({"web-1"})));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->name, "web-1");
}

// Each case once crashed or could crash a peer with an uncaught type error.
TEST(WireControl, VmOpenRefusesWrongTypesMissingAndUnknownFields) {
  EXPECT_EQ(OpenError(R"({"dest":5})"), "VM_OPEN: unknown field \"dest\"");
  EXPECT_EQ(OpenError(R"({})"), "VM_OPEN: missing field \"name\"");
  // A sender names a VM, never where it goes (the receiver host maps names).
  EXPECT_EQ(OpenError(R"({"name":"a","dest":"unix:/run/other.qmp"})"),
            "VM_OPEN: unknown field \"dest\"");
  EXPECT_EQ(OpenError(R"({"name":"a","dest_qmp":"/run/q"})"),
            "VM_OPEN: unknown field \"dest_qmp\"");
  EXPECT_EQ(OpenError(R"({"name":["a"]})"), "VM_OPEN: field \"name\" must be a string");
  EXPECT_EQ(OpenError(R"({"name":"a","path":"/etc"})"), "VM_OPEN: unknown field \"path\"");
  EXPECT_EQ(OpenError("[1,2]"), "VM_OPEN: not a JSON object");
  EXPECT_EQ(OpenError("{\"name\":"), "VM_OPEN: malformed JSON");
  EXPECT_EQ(OpenError(""), "VM_OPEN: malformed JSON");
  EXPECT_EQ(OpenError(R"({"name":"../x"})"),
            "VM_OPEN: field \"name\" must be 1-64 characters of A-Z a-z 0-9 . _ -");
  EXPECT_EQ(OpenError(R"({"name":".."})"),
            "VM_OPEN: field \"name\" must be 1-64 characters of A-Z a-z 0-9 . _ -");
  EXPECT_EQ(OpenError(R"({"name":")" + std::string(5000, 'a') + "\"}"),
            "VM_OPEN: field \"name\" is too long");
}

TEST(WireControl, VmEventsOfEachKind) {
  auto p = ParseVmEvent(AsBytes(R"({"event":"progress","delivered":123})"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->delivered, 123u);
  auto d = ParseVmEvent(
      AsBytes(R"({"event":"done","loaded_us":5,"resume_us":6,"bytes":7,"dest_status":"running"})"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->loaded_us, 5);
  EXPECT_EQ(d->dest_status, "running");
  auto f = ParseVmEvent(AsBytes(R"({"event":"failed","error":"boom"})"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->error, "boom");
  EXPECT_TRUE(ParseVmEvent(AsBytes(R"({"event":"ready"})")).ok());
}

TEST(WireControl, VmEventRefusesWrongTypesMissingAndUnknownFields) {
  EXPECT_EQ(EventError(R"({"event":"done","loaded_us":"soon"})"),
            "VM_EVENT: field \"loaded_us\" must be an integer");
  EXPECT_EQ(EventError(R"({"event":"progress","delivered":-1})"),
            "VM_EVENT: field \"delivered\" must be a non-negative integer");
  EXPECT_EQ(EventError(R"({"event":"progress","delivered":1.5})"),
            "VM_EVENT: field \"delivered\" must be a non-negative integer");
  EXPECT_EQ(EventError(R"({"event":"progress"})"), "VM_EVENT: missing field \"delivered\"");
  EXPECT_EQ(EventError(R"({"event":"failed"})"), "VM_EVENT: missing field \"error\"");
  EXPECT_EQ(EventError(R"({"event":7})"), "VM_EVENT: field \"event\" must be a string");
  EXPECT_EQ(EventError(R"({"delivered":7})"), "VM_EVENT: missing field \"event\"");
  EXPECT_EQ(EventError(R"({"event":"ready","x":1})"), "VM_EVENT: unknown field \"x\"");
  EXPECT_EQ(EventError(R"({"event":"explode"})"), "VM_EVENT: unknown event \"explode\"");
  EXPECT_EQ(EventError("null"), "VM_EVENT: not a JSON object");
}

}  // namespace
}  // namespace gangmig::wire
