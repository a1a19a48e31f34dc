// lathe's expression language: a small, safe, typed language for derived columns and row filters in
// recipes (no eval, no SQL). Parsed by lathe, type-checked against a table's schema, evaluated vectorised
// over whole columns.
//
// Grammar (keywords case-insensitive), lowest precedence first:
//   or  |  and  |  not  |  = == != <> < <= > >=, [not] in (a, b, ...), [not] between a and b, is [not] null
//   ||  (text concatenation; operands of any type are converted to text)  |  + -  |  * / %  |  unary - +
//   primary: 12, 1.5, 2e3, 'text' or "text" (escapes \\ \' \" \n \t \r \0 \uXXXX, or a doubled quote),
//            true, false, null, date('2024-01-31'), column (bare identifier [A-Za-z_][A-Za-z0-9_]*, or
//            `any name` in backticks, `` for a literal backtick), f(args), ( expr )
// Functions: abs round(x[,n]) floor ceil log log10 exp sqrt pow min max coalesce if(cond,a,b) lower upper
//   trim length contains starts_with ends_with replace(s,from,to) substr(s,start[,len]) (1-based)
//   regex_match(s,'pattern') year month day hour weekday (0 = Monday) days_between(start,end) (whole days,
//   truncated toward zero) date(text) to_int to_float to_string is_null.
//
// Semantics: nulls propagate through operators and functions (except coalesce, if, is_null, is [not] null,
// and/or which follow SQL three-valued logic, and min/max which ignore nulls). Integer arithmetic stays
// integer (+ - * %) and overflow gives null; `/` always gives a float; division or modulo by zero gives
// null; log/log10/sqrt of values outside their domain give null. Comparisons need comparable types
// (integer and float mix; a datetime compares with a text literal holding an ISO 8601 date).
// regex_match takes a literal ECMAScript pattern of at most kMaxRegexPatternBytes with no nested
// quantifiers (catastrophic backtracking is refused up front); values longer than kMaxRegexInputBytes
// give null. String functions work on bytes except length (UTF-8 code points); lower/upper are ASCII.
// The null literal alone has type float (an all-null float column).
//
// Limits: text <= kMaxExprBytes, nesting and tree depth <= kMaxExprDepth — errors, never a stack overflow.
// Work is linear in the text (parse/check) and in rows x nodes (eval); string functions run once per
// distinct value of a dictionary-encoded column.
//
// Errors: kInvalidArgument with ErrorDetail::Position("expression", pos, msg), pos the 1-based character
// (UTF-8 code point) offset of the offending token; the message ends with "at <pos>".
// Thread safety: an Expr is immutable after parsing; Check/Eval on a const Expr are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "data/table.h"

namespace lathe {

inline constexpr size_t kMaxExprBytes = 64 * 1024;
inline constexpr int kMaxExprDepth = 200;
inline constexpr size_t kMaxRegexPatternBytes = 256;
inline constexpr size_t kMaxRegexInputBytes = 4096;
// Flags for std::regex objects that test a whole value (regex_match, contract rules) or rewrite one (the
// regex_replace recipe step, whose captures come out the same as with the default executor): ECMAScript syntax,
// run by libstdc++'s breadth-first (Thompson NFA) executor, whose time is O(value length x pattern size). The
// default depth-first executor backtracks: patterns the nesting check lets through (a*a*a*b, .*.*.*x) take
// polynomial time of high degree, and unchecked ones ((a+)+$ in a contract) exponential time, which froze an
// I/O thread on a 4 KB value. Back-references (refused anyway) do not compile with this flag.
#if defined(__GLIBCXX__)
inline constexpr std::regex::flag_type kWholeMatchRegexFlags = std::regex::ECMAScript | std::regex_constants::__polynomial;
#else
inline constexpr std::regex::flag_type kWholeMatchRegexFlags = std::regex::ECMAScript;
#endif

struct ExprNode;  // private to expr.cc

class Expr {
 public:
  Expr();
  ~Expr();
  Expr(const Expr&);
  Expr& operator=(const Expr&);
  Expr(Expr&&) noexcept;
  Expr& operator=(Expr&&) noexcept;

  const std::string& text() const { return text_; }
  // Names of the columns the expression reads, in order of first use.
  std::vector<std::string> ColumnsUsed() const;

  // Internal representation (nodes in an arena; root_ indexes it). Used by expr.cc only.
  std::vector<ExprNode>& nodes() { return *nodes_; }
  const std::vector<ExprNode>& nodes() const { return *nodes_; }
  int root() const { return root_; }
  void set_root(int r) { root_ = r; }
  void set_text(std::string t) { text_ = std::move(t); }

 private:
  std::unique_ptr<std::vector<ExprNode>> nodes_;
  int root_ = -1;
  std::string text_;
};

Result<Expr> ParseExpr(std::string_view text);
// The result type of `e` over the columns of `schema_source` (only names and types are read).
Result<ColumnType> CheckExpr(const Expr& e, const Table& schema_source);
// Evaluates `e` over every row of `t` (checks it first). The column has no name and t.num_rows rows.
Result<Column> EvalExpr(const Expr& e, const Table& t);
// Rows of `t` where `predicate` (a boolean expression) is true; null counts as false.
Result<Table> FilterRows(const Table& t, const Expr& predicate);
// The same selection as a mask (1 = keep), one byte per row of `t`.
Result<std::vector<uint8_t>> EvalPredicate(const Expr& predicate, const Table& t);

// The regex guard regex_match uses, for other callers of std::regex on user patterns (recipe steps):
// kInvalidArgument when the pattern is longer than kMaxRegexPatternBytes, has back-references or nested
// quantifiers, or does not compile as ECMAScript.
Status ValidateSafeRegex(std::string_view pattern);

}  // namespace lathe
