// Status and Result<T>: errors are values in lathe. No exceptions cross module boundaries or the request
// path. A Status carries a code (mapped to HTTP in exactly one place, api/problem.cc), a human message, and
// optionally a list of detail errors that point at a field, a line or a column of the input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace lathe {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // malformed or semantically bad input (400)
  kNotFound,            // named thing does not exist (404)
  kAlreadyExists,       // conflict with existing state (409)
  kFailedPrecondition,  // valid request, but the state does not allow it (409)
  kUnauthenticated,     // no or bad credentials (401)
  kPermissionDenied,    // authenticated but not allowed (403)
  kPayloadTooLarge,     // body over a named limit (413)
  kHeadersTooLarge,     // headers over a named limit (431)
  kUnsupportedMedia,    // unknown content type / format (415)
  kDeadlineExceeded,    // request or read timeout (408)
  kResourceExhausted,   // queue full, rate or quota limit (429)
  kCancelled,           // cancelled by a user or by shutdown
  kUnavailable,         // transient; try again (503)
  kDataLoss,            // stored data is corrupt (500)
  kInternal,            // a bug or an unexpected system error (500)
};

const char* StatusCodeName(StatusCode code);

// Points an error at a place in the input: exactly one of field / line / column is set.
struct ErrorDetail {
  std::string field;
  int64_t line = -1;
  std::string column;
  std::string message;
  int64_t position = -1;  // 1-based character offset into the text named by `field` (an expression), or -1

  static ErrorDetail Field(std::string f, std::string m) { return {std::move(f), -1, {}, std::move(m)}; }
  static ErrorDetail Line(int64_t l, std::string m) { return {{}, l, {}, std::move(m)}; }
  static ErrorDetail Column(std::string c, std::string m) { return {{}, -1, std::move(c), std::move(m)}; }
  // A row-level problem: line (or row) number and column name together.
  static ErrorDetail Cell(int64_t l, std::string c, std::string m) { return {{}, l, std::move(c), std::move(m)}; }
  // A character position inside the text of `field` (expression errors).
  static ErrorDetail Position(std::string f, int64_t pos, std::string m) {
    return {std::move(f), -1, {}, std::move(m), pos};
  }
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status PayloadTooLarge(std::string m) { return {StatusCode::kPayloadTooLarge, std::move(m)}; }
  static Status HeadersTooLarge(std::string m) { return {StatusCode::kHeadersTooLarge, std::move(m)}; }
  static Status UnsupportedMedia(std::string m) { return {StatusCode::kUnsupportedMedia, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<ErrorDetail>& details() const { return details_; }

  Status& AddDetail(ErrorDetail d) {
    details_.push_back(std::move(d));
    return *this;
  }
  Status WithDetail(ErrorDetail d) && {
    details_.push_back(std::move(d));
    return std::move(*this);
  }
  // Prefixes the message with context, keeping code and details: "importing x.csv: line 3: ...".
  Status Annotate(const std::string& context) const;

  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::vector<ErrorDetail> details_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(v_);
  }
  Status TakeStatus() { return ok() ? Status() : std::move(std::get<1>(v_)); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lathe

#define LATHE_CONCAT_INNER(a, b) a##b
#define LATHE_CONCAT(a, b) LATHE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::lathe::Status _st = (expr);              \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)  \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.TakeStatus();      \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN(auto x, ComputeX());
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(LATHE_CONCAT(_res_, __LINE__), lhs, expr)
