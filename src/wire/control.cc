// Strict decoding of the control messages. nlohmann::json is used only to parse (without
// exceptions: parse(..., nullptr, false)); every field is then checked by type before it
// is read, so no type_error can escape. Limits: a message is at most a frame's payload
// (64 KiB for VM_OPEN/VM_EVENT, frame.cc), strings at most 4096 bytes.
#include "wire/control.h"

#include <nlohmann/json.hpp>

namespace gangmig::wire {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxString = 4096;

Result<json> ParseObject(const char* what, ByteView bytes) {
  json j = json::parse(AsChars(bytes), nullptr, false);
  if (j.is_discarded()) return Status::Error(std::string(what) + ": malformed JSON");
  if (!j.is_object()) return Status::Error(std::string(what) + ": not a JSON object");
  return j;
}

Status Field(const char* what, const json& j, const char* key, std::string* out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return Status::Ok();
    return Status::Error(std::string(what) + ": missing field \"" + key + "\"");
  }
  if (!it->is_string())
    return Status::Error(std::string(what) + ": field \"" + key + "\" must be a string");
  const std::string& s = it->get_ref<const std::string&>();
  if (s.size() > kMaxString)
    return Status::Error(std::string(what) + ": field \"" + key + "\" is too long");
  *out = s;
  return Status::Ok();
}

template <typename Int>
Status IntField(const char* what, const json& j, const char* key, Int* out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return Status::Ok();
    return Status::Error(std::string(what) + ": missing field \"" + key + "\"");
  }
  bool ok = std::is_signed_v<Int> ? (it->is_number_integer()) : it->is_number_unsigned();
  if (!ok)
    return Status::Error(std::string(what) + ": field \"" + key + "\" must be " +
                         (std::is_signed_v<Int> ? "an integer" : "a non-negative integer"));
  *out = it->get<Int>();
  return Status::Ok();
}

Status OnlyKnown(const char* what, const json& j, std::initializer_list<const char*> known) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool found = false;
    for (const char* k : known) found = found || it.key() == k;
    if (!found) return Status::Error(std::string(what) + ": unknown field \"" + it.key() + "\"");
  }
  return Status::Ok();
}

}  // namespace

bool ValidVmName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<VmOpenMessage> ParseVmOpen(ByteView bytes) {
  const char* what = "VM_OPEN";
  auto j = ParseObject(what, bytes);
  if (!j.ok()) return j.status();
  GANGMIG_RETURN_IF_ERROR(OnlyKnown(what, *j, {"name"}));
  VmOpenMessage m;
  GANGMIG_RETURN_IF_ERROR(Field(what, *j, "name", &m.name, true));
  if (!ValidVmName(m.name))
    return Status::Error("VM_OPEN: field \"name\" must be 1-64 characters of A-Z a-z 0-9 . _ -");
  return m;
}

std::string SerializeVmOpen(const VmOpenMessage& m) {
  return json{{"name", m.name}}.dump();
}

Result<VmEventMessage> ParseVmEvent(ByteView bytes) {
  const char* what = "VM_EVENT";
  auto j = ParseObject(what, bytes);
  if (!j.ok()) return j.status();
  VmEventMessage m;
  GANGMIG_RETURN_IF_ERROR(Field(what, *j, "event", &m.event, true));
  if (m.event == "ready") {
    GANGMIG_RETURN_IF_ERROR(OnlyKnown(what, *j, {"event"}));
  } else if (m.event == "progress") {
    GANGMIG_RETURN_IF_ERROR(OnlyKnown(what, *j, {"event", "delivered"}));
    GANGMIG_RETURN_IF_ERROR(IntField(what, *j, "delivered", &m.delivered, true));
  } else if (m.event == "done") {
    GANGMIG_RETURN_IF_ERROR(OnlyKnown(what, *j,
                                      {"event", "bytes", "loaded_us", "resume_us", "eof_frame_us",
                                       "delivered_us", "dest_status", "dest_migration"}));
    GANGMIG_RETURN_IF_ERROR(IntField(what, *j, "bytes", &m.bytes, false));
    GANGMIG_RETURN_IF_ERROR(IntField(what, *j, "loaded_us", &m.loaded_us, false));
    GANGMIG_RETURN_IF_ERROR(IntField(what, *j, "resume_us", &m.resume_us, false));
    GANGMIG_RETURN_IF_ERROR(IntField(what, *j, "eof_frame_us", &m.eof_frame_us, false));
    GANGMIG_RETURN_IF_ERROR(IntField(what, *j, "delivered_us", &m.delivered_us, false));
    GANGMIG_RETURN_IF_ERROR(Field(what, *j, "dest_status", &m.dest_status, false));
    GANGMIG_RETURN_IF_ERROR(Field(what, *j, "dest_migration", &m.dest_migration, false));
  } else if (m.event == "failed") {
    GANGMIG_RETURN_IF_ERROR(OnlyKnown(what, *j, {"event", "error"}));
    GANGMIG_RETURN_IF_ERROR(Field(what, *j, "error", &m.error, true));
  } else {
    return Status::Error("VM_EVENT: unknown event \"" + m.event.substr(0, 64) + "\"");
  }
  return m;
}

}  // namespace gangmig::wire
