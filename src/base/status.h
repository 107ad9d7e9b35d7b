// Status and Result<T>: recoverable errors as values, with context in the message.
// Bytes from QEMU or a socket never abort the process; every fallible call returns one
// of these.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace gangmig {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  // REQUIRES: !ok()
  const std::string& message() const { return *message_; }
  // Returns a copy with "context: " put in front of the message (no-op when ok).
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(context + ": " + *message_);
  }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT; REQUIRES: !status.ok()

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  // REQUIRES: ok()
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace gangmig

// Returns the status from the enclosing function when `expr` failed.
#define GANGMIG_RETURN_IF_ERROR(expr) \
  do {                                \
    ::gangmig::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)
