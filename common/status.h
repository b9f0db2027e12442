// Status and StatusOr: how everything in glm that can fail reports it.
//
// A small set of codes, each with a retry meaning (after absl::Status):
//   kOk                  success.
//   kInvalidArgument     the caller's input is wrong; fix the input, do not retry.
//   kNotFound            a key, file or peer does not exist.
//   kAlreadyExists       creating something that is already there.
//   kFailedPrecondition  the system is not in a state for this call; do not retry
//                        until someone acts (e.g. run scripts/setup, delete a lock).
//   kAborted             a round was interrupted (membership change, lease lost);
//                        redo the whole round.
//   kUnavailable         transient: the peer is away or busy; retry the call with
//                        backoff.
//   kDeadlineExceeded    the call timed out; retry with backoff.
//   kResourceExhausted   out of disk, memory or quota.
//   kDataLoss            stored bytes are corrupt or truncated.
//   kUnimplemented       not built yet.
//   kInternal            a bug; the message says where.
//
// Thread-safety: Status and StatusOr are values; const methods may be called
// concurrently, mutation needs external synchronisation.
#ifndef GLM_COMMON_STATUS_H_
#define GLM_COMMON_STATUS_H_

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "common/check.h"

namespace glm {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kFailedPrecondition = 4,
  kAborted = 5,
  kUnavailable = 6,
  kDeadlineExceeded = 7,
  kResourceExhausted = 8,
  kDataLoss = 9,
  kUnimplemented = 10,
  kInternal = 11,
};

// "INVALID_ARGUMENT", "NOT_FOUND", ...
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // True for the codes where retrying the same call later may succeed.
  bool IsRetryable() const {
    return code_ == StatusCode::kUnavailable || code_ == StatusCode::kDeadlineExceeded;
  }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

  // "OK" or "NOT_FOUND: no such key ...".
  std::string ToString() const;

  // Explicitly drops an error; grep for it to find every ignored failure.
  void IgnoreError() const {}

  bool operator==(const Status& other) const {
    return code_ == other.code_ && message_ == other.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

// Constructors for each code, e.g. NotFoundError("no shard ", id).
Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status UnavailableError(std::string message);
Status DeadlineExceededError(std::string message);
Status ResourceExhaustedError(std::string message);
Status DataLossError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : status_(status) {  // NOLINT: implicit by design
    GLM_CHECK(!status_.ok()) << "StatusOr constructed from an OK Status without a value";
  }
  StatusOr(Status&& status) : status_(std::move(status)) {  // NOLINT
    GLM_CHECK(!status_.ok()) << "StatusOr constructed from an OK Status without a value";
  }
  StatusOr(const T& value) : value_(value) {}  // NOLINT
  StatusOr(T&& value) : value_(std::move(value)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // Dies with the error if !ok(): call only after checking ok().
  const T& value() const& {
    GLM_CHECK(ok()) << "StatusOr::value() on error: " << status_;
    return *value_;
  }
  T& value() & {
    GLM_CHECK(ok()) << "StatusOr::value() on error: " << status_;
    return *value_;
  }
  T&& value() && {
    GLM_CHECK(ok()) << "StatusOr::value() on error: " << status_;
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  T value_or(T fallback) const { return ok() ? *value_ : std::move(fallback); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace glm

#define GLM_STATUS_CONCAT_INNER_(a, b) a##b
#define GLM_STATUS_CONCAT_(a, b) GLM_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define GLM_RETURN_IF_ERROR(expr)                               \
  do {                                                          \
    ::glm::Status glm_status_tmp_ = (expr);                     \
    if (!glm_status_tmp_.ok()) return glm_status_tmp_;          \
  } while (0)

// `GLM_ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the error.
#define GLM_ASSIGN_OR_RETURN(lhs, expr) \
  GLM_ASSIGN_OR_RETURN_IMPL_(GLM_STATUS_CONCAT_(glm_statusor_, __LINE__), lhs, expr)
#define GLM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#endif  // GLM_COMMON_STATUS_H_
