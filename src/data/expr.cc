#include "data/expr.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <regex>
#include <type_traits>
#include <unordered_map>

#include "common/clock.h"
#include "data/table_ops.h"
#include "data/value_parse.h"

namespace lathe {

namespace expr_detail {
// Value types during checking/evaluation: the column types plus the type of the bare null literal.
enum class VT : uint8_t { kNull, kInt, kFloat, kBool, kString, kDatetime };
enum class NodeKind : uint8_t { kLiteral, kColumn, kUnary, kBinary, kCall, kIn, kBetween, kIsNull };
}  // namespace expr_detail
using expr_detail::NodeKind;
using expr_detail::VT;

struct ExprNode {
  NodeKind kind = NodeKind::kLiteral;
  int32_t pos = 1;   // 1-based character position of the token that names the node
  std::string name;  // column name, lower-case function name, or operator
  std::vector<int32_t> args;
  bool negated = false;  // not in / not between / is not null
  VT lit_type = VT::kNull;
  int64_t lit_i = 0;
  double lit_f = 0;
  std::string lit_s;
  int32_t depth = 1;
};

Expr::Expr() : nodes_(std::make_unique<std::vector<ExprNode>>()) {}
Expr::~Expr() = default;
Expr::Expr(const Expr& o) : nodes_(std::make_unique<std::vector<ExprNode>>(*o.nodes_)), root_(o.root_), text_(o.text_) {}
Expr& Expr::operator=(const Expr& o) {
  if (this != &o) {
    nodes_ = std::make_unique<std::vector<ExprNode>>(*o.nodes_);
    root_ = o.root_;
    text_ = o.text_;
  }
  return *this;
}
Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;

std::vector<std::string> Expr::ColumnsUsed() const {
  std::vector<std::string> out;
  if (!nodes_) return out;
  for (const ExprNode& n : *nodes_) {
    if (n.kind == NodeKind::kColumn && std::find(out.begin(), out.end(), n.name) == out.end()) out.push_back(n.name);
  }
  return out;
}

namespace {

const char* VTName(VT t) {
  switch (t) {
    case VT::kNull: return "null";
    case VT::kInt: return "integer";
    case VT::kFloat: return "float";
    case VT::kBool: return "boolean";
    case VT::kString: return "string";
    case VT::kDatetime: return "datetime";
  }
  return "?";
}

VT FromColumnType(ColumnType t) {
  switch (t) {
    case ColumnType::kInt64: return VT::kInt;
    case ColumnType::kFloat64: return VT::kFloat;
    case ColumnType::kBool: return VT::kBool;
    case ColumnType::kString: return VT::kString;
    case ColumnType::kDatetime: return VT::kDatetime;
  }
  return VT::kString;
}

ColumnType ToColumnType(VT t) {
  switch (t) {
    case VT::kNull:
    case VT::kFloat: return ColumnType::kFloat64;
    case VT::kInt: return ColumnType::kInt64;
    case VT::kBool: return ColumnType::kBool;
    case VT::kString: return ColumnType::kString;
    case VT::kDatetime: return ColumnType::kDatetime;
  }
  return ColumnType::kFloat64;
}

bool IsNumeric(VT t) { return t == VT::kInt || t == VT::kFloat; }

std::string Lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// 1-based code-point position of byte offset `off` in `text`.
int64_t CharPos(std::string_view text, size_t off) {
  int64_t pos = 1;
  for (size_t i = 0; i < off && i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++pos;
  }
  return pos;
}

Status PosError(int64_t pos, const std::string& msg) {
  std::string m = msg + " at " + std::to_string(pos);
  return Status::InvalidArgument(m).WithDetail(ErrorDetail::Position("expression", pos, m));
}

// ---------------------------------------------------------------------------------------------------
// Lexer

enum class Tok : uint8_t { kEnd, kInt, kFloat, kString, kIdent, kQuotedIdent, kOp, kLParen, kRParen, kComma };

struct Token {
  Tok kind = Tok::kEnd;
  size_t off = 0;
  std::string text;  // identifier / operator / decoded string
  int64_t i = 0;
  double f = 0;
};

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  auto err = [&](size_t off, const std::string& m) { return PosError(CharPos(s, off), m); };
  while (true) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    Token t;
    t.off = i;
    if (i >= s.size()) {
      out.push_back(t);
      return out;
    }
    const char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      if (j < s.size() && s[j] == '.') {
        is_float = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
          is_float = true;
          j = k;
          while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        } else {
          return err(j, "malformed number '" + std::string(s.substr(i, k - i)) + "'");
        }
      }
      if (j < s.size() && (std::isalpha(static_cast<unsigned char>(s[j])) || s[j] == '_')) {
        return err(j, "unexpected '" + std::string(1, s[j]) + "' after a number");
      }
      std::string_view num = s.substr(i, j - i);
      if (!is_float) {
        int64_t v = 0;
        if (ParseInt64(num, &v) == IntParse::kOk) {
          t.kind = Tok::kInt;
          t.i = v;
        } else {
          is_float = true;
        }
      }
      if (is_float) {
        t.kind = Tok::kFloat;
        if (!ParseFloat64(num, &t.f)) return err(i, "malformed number '" + std::string(num) + "'");
      }
      t.text = std::string(num);
      i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      t.kind = Tok::kIdent;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (c == '`') {
      size_t j = i + 1;
      std::string name;
      while (true) {
        if (j >= s.size()) return err(i, "unterminated `quoted column name`");
        if (s[j] == '`') {
          if (j + 1 < s.size() && s[j + 1] == '`') {
            name += '`';
            j += 2;
            continue;
          }
          break;
        }
        name += s[j++];
      }
      if (name.empty()) return err(i, "empty column name ``");
      t.kind = Tok::kQuotedIdent;
      t.text = std::move(name);
      i = j + 1;
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      std::string v;
      while (true) {
        if (j >= s.size()) return err(i, "unterminated string");
        const char d = s[j];
        if (d == c) {
          if (j + 1 < s.size() && s[j + 1] == c) {
            v += c;
            j += 2;
            continue;
          }
          break;
        }
        if (d == '\\') {
          if (j + 1 >= s.size()) return err(i, "unterminated string");
          const char e = s[j + 1];
          switch (e) {
            case '\\': v += '\\'; break;
            case '\'': v += '\''; break;
            case '"': v += '"'; break;
            case 'n': v += '\n'; break;
            case 't': v += '\t'; break;
            case 'r': v += '\r'; break;
            case '0': v += '\0'; break;
            case 'u': {
              uint32_t cp = 0;
              if (j + 6 > s.size()) return err(j, "\\u needs 4 hex digits");
              for (size_t k = j + 2; k < j + 6; ++k) {
                const char h = s[k];
                cp <<= 4;
                if (h >= '0' && h <= '9') cp |= static_cast<uint32_t>(h - '0');
                else if (h >= 'a' && h <= 'f') cp |= static_cast<uint32_t>(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F') cp |= static_cast<uint32_t>(h - 'A' + 10);
                else return err(j, "\\u needs 4 hex digits");
              }
              if (cp >= 0xD800 && cp <= 0xDFFF) return err(j, "\\u escape is a lone surrogate");
              AppendUtf8(v, cp);
              j += 6;
              continue;
            }
            default: return err(j, "unknown escape '\\" + std::string(1, e) + "'");
          }
          j += 2;
          continue;
        }
        v += d;
        ++j;
      }
      t.kind = Tok::kString;
      t.text = std::move(v);
      i = j + 1;
    } else if (c == '(') {
      t.kind = Tok::kLParen;
      t.text = "(";
      ++i;
    } else if (c == ')') {
      t.kind = Tok::kRParen;
      t.text = ")";
      ++i;
    } else if (c == ',') {
      t.kind = Tok::kComma;
      t.text = ",";
      ++i;
    } else {
      static const char* kOps[] = {"==", "!=", "<>", "<=", ">=", "||", "=", "<", ">", "+", "-", "*", "/", "%"};
      bool found = false;
      for (const char* op : kOps) {
        const size_t len = std::strlen(op);
        if (s.substr(i, len) == op) {
          t.kind = Tok::kOp;
          t.text = op;
          i += len;
          found = true;
          break;
        }
      }
      if (!found) {
        // Show the whole UTF-8 character, not a broken byte.
        size_t len = 1;
        while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80 && len < 4) ++len;
        return err(i, "unexpected character '" + std::string(s.substr(i, len)) + "'");
      }
    }
    out.push_back(std::move(t));
  }
}

// ---------------------------------------------------------------------------------------------------
// Parser

bool IsKeyword(const std::string& lower) {
  return lower == "and" || lower == "or" || lower == "not" || lower == "in" || lower == "between" || lower == "is" ||
         lower == "null" || lower == "true" || lower == "false";
}

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> toks, Expr& out) : text_(text), toks_(std::move(toks)), out_(out) {}

  Result<int32_t> Run() {
    ASSIGN_OR_RETURN(int32_t root, ParseOr());
    if (Peek().kind != Tok::kEnd) return Unexpected(Peek());
    return root;
  }

 private:
  struct NestGuard {
    explicit NestGuard(int& n) : n_(n) { ++n_; }
    ~NestGuard() { --n_; }
    int& n_;
  };

  const Token& Peek(size_t k = 0) const { return toks_[std::min(idx_ + k, toks_.size() - 1)]; }
  const Token& Next() { return toks_[std::min(idx_++, toks_.size() - 1)]; }
  int64_t Pos(const Token& t) const { return CharPos(text_, t.off); }
  bool IsWord(const Token& t, const char* w) const { return t.kind == Tok::kIdent && Lower(t.text) == w; }
  bool IsOp(const Token& t, const char* op) const { return t.kind == Tok::kOp && t.text == op; }

  Status Unexpected(const Token& t) const {
    if (t.kind == Tok::kEnd) return PosError(Pos(t), "unexpected end of expression");
    std::string shown = t.kind == Tok::kString ? "'" + t.text + "'" : t.text;
    if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
    if (t.kind == Tok::kQuotedIdent) shown = "`" + shown + "`";
    if (t.kind != Tok::kString) shown = "'" + shown + "'";
    return PosError(Pos(t), "unexpected " + shown);
  }

  Status CheckNest(const Token& t) const {
    if (nest_ > kMaxExprDepth) {
      return PosError(Pos(t), "expression is nested too deeply (limit " + std::to_string(kMaxExprDepth) + ")");
    }
    return Status::Ok();
  }

  Result<int32_t> Add(ExprNode n) {
    int32_t d = 1;
    for (int32_t a : n.args) d = std::max(d, out_.nodes()[static_cast<size_t>(a)].depth + 1);
    n.depth = d;
    if (d > kMaxExprDepth) {
      return PosError(n.pos, "expression is nested too deeply (limit " + std::to_string(kMaxExprDepth) + ")");
    }
    out_.nodes().push_back(std::move(n));
    return static_cast<int32_t>(out_.nodes().size() - 1);
  }

  Result<int32_t> Binary(const Token& op, std::string name, int32_t l, int32_t r) {
    ExprNode n;
    n.kind = NodeKind::kBinary;
    n.pos = static_cast<int32_t>(Pos(op));
    n.name = std::move(name);
    n.args = {l, r};
    return Add(std::move(n));
  }

  Result<int32_t> ParseOr() {
    ASSIGN_OR_RETURN(int32_t l, ParseAnd());
    while (IsWord(Peek(), "or")) {
      const Token& op = Next();
      ASSIGN_OR_RETURN(int32_t r, ParseAnd());
      ASSIGN_OR_RETURN(l, Binary(op, "or", l, r));
    }
    return l;
  }

  Result<int32_t> ParseAnd() {
    ASSIGN_OR_RETURN(int32_t l, ParseNot());
    while (IsWord(Peek(), "and")) {
      const Token& op = Next();
      ASSIGN_OR_RETURN(int32_t r, ParseNot());
      ASSIGN_OR_RETURN(l, Binary(op, "and", l, r));
    }
    return l;
  }

  Result<int32_t> ParseNot() {
    if (IsWord(Peek(), "not")) {
      const Token& op = Next();
      NestGuard g(nest_);
      RETURN_IF_ERROR(CheckNest(op));
      ASSIGN_OR_RETURN(int32_t a, ParseNot());
      ExprNode n;
      n.kind = NodeKind::kUnary;
      n.pos = static_cast<int32_t>(Pos(op));
      n.name = "not";
      n.args = {a};
      return Add(std::move(n));
    }
    return ParseCmp();
  }

  Result<int32_t> ParseCmp() {
    ASSIGN_OR_RETURN(int32_t l, ParseConcat());
    while (true) {
      const Token& t = Peek();
      if (t.kind == Tok::kOp && (t.text == "=" || t.text == "==" || t.text == "!=" || t.text == "<>" ||
                                 t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=")) {
        const Token& op = Next();
        std::string name = op.text == "==" ? "=" : op.text == "<>" ? "!=" : op.text;
        ASSIGN_OR_RETURN(int32_t r, ParseConcat());
        ASSIGN_OR_RETURN(l, Binary(op, name, l, r));
        continue;
      }
      if (IsWord(t, "is")) {
        const Token& op = Next();
        ExprNode n;
        n.kind = NodeKind::kIsNull;
        n.pos = static_cast<int32_t>(Pos(op));
        if (IsWord(Peek(), "not")) {
          Next();
          n.negated = true;
        }
        if (!IsWord(Peek(), "null")) return Unexpected(Peek());
        Next();
        n.args = {l};
        ASSIGN_OR_RETURN(l, Add(std::move(n)));
        continue;
      }
      bool negated = false;
      size_t look = 0;
      if (IsWord(t, "not") && (IsWord(Peek(1), "in") || IsWord(Peek(1), "between"))) {
        negated = true;
        look = 1;
      }
      if (IsWord(Peek(look), "in")) {
        if (negated) Next();
        const Token& op = Next();
        ExprNode n;
        n.kind = NodeKind::kIn;
        n.pos = static_cast<int32_t>(Pos(op));
        n.negated = negated;
        n.args = {l};
        if (Peek().kind != Tok::kLParen) return Unexpected(Peek());
        Next();
        NestGuard g(nest_);
        RETURN_IF_ERROR(CheckNest(op));
        while (true) {
          ASSIGN_OR_RETURN(int32_t item, ParseOr());
          n.args.push_back(item);
          if (Peek().kind == Tok::kComma) {
            Next();
            continue;
          }
          if (Peek().kind == Tok::kRParen) {
            Next();
            break;
          }
          return Unexpected(Peek());
        }
        ASSIGN_OR_RETURN(l, Add(std::move(n)));
        continue;
      }
      if (IsWord(Peek(look), "between")) {
        if (negated) Next();
        const Token& op = Next();
        ASSIGN_OR_RETURN(int32_t lo, ParseConcat());
        if (!IsWord(Peek(), "and")) return Unexpected(Peek());
        Next();
        ASSIGN_OR_RETURN(int32_t hi, ParseConcat());
        ExprNode n;
        n.kind = NodeKind::kBetween;
        n.pos = static_cast<int32_t>(Pos(op));
        n.negated = negated;
        n.args = {l, lo, hi};
        ASSIGN_OR_RETURN(l, Add(std::move(n)));
        continue;
      }
      return l;
    }
  }

  Result<int32_t> ParseConcat() {
    ASSIGN_OR_RETURN(int32_t l, ParseAdd());
    while (IsOp(Peek(), "||")) {
      const Token& op = Next();
      ASSIGN_OR_RETURN(int32_t r, ParseAdd());
      ASSIGN_OR_RETURN(l, Binary(op, "||", l, r));
    }
    return l;
  }

  Result<int32_t> ParseAdd() {
    ASSIGN_OR_RETURN(int32_t l, ParseMul());
    while (IsOp(Peek(), "+") || IsOp(Peek(), "-")) {
      const Token& op = Next();
      ASSIGN_OR_RETURN(int32_t r, ParseMul());
      ASSIGN_OR_RETURN(l, Binary(op, op.text, l, r));
    }
    return l;
  }

  Result<int32_t> ParseMul() {
    ASSIGN_OR_RETURN(int32_t l, ParseUnary());
    while (IsOp(Peek(), "*") || IsOp(Peek(), "/") || IsOp(Peek(), "%")) {
      const Token& op = Next();
      ASSIGN_OR_RETURN(int32_t r, ParseUnary());
      ASSIGN_OR_RETURN(l, Binary(op, op.text, l, r));
    }
    return l;
  }

  Result<int32_t> ParseUnary() {
    if (IsOp(Peek(), "-") || IsOp(Peek(), "+")) {
      const Token& op = Next();
      NestGuard g(nest_);
      RETURN_IF_ERROR(CheckNest(op));
      ASSIGN_OR_RETURN(int32_t a, ParseUnary());
      ExprNode& child = out_.nodes()[static_cast<size_t>(a)];
      // Fold a sign into a numeric literal so -9223372036854775808 and -1.5 are plain literals.
      if (op.text == "-" && child.kind == NodeKind::kLiteral && child.lit_type == VT::kFloat) {
        child.lit_f = -child.lit_f;
        child.pos = static_cast<int32_t>(Pos(op));
        return a;
      }
      if (op.text == "-" && child.kind == NodeKind::kLiteral && child.lit_type == VT::kInt &&
          child.lit_i != INT64_MIN) {
        child.lit_i = -child.lit_i;
        child.pos = static_cast<int32_t>(Pos(op));
        return a;
      }
      ExprNode n;
      n.kind = NodeKind::kUnary;
      n.pos = static_cast<int32_t>(Pos(op));
      n.name = op.text == "-" ? "neg" : "pos";
      n.args = {a};
      return Add(std::move(n));
    }
    return ParsePrimary();
  }

  Result<int32_t> ParsePrimary() {
    const Token& t = Next();
    ExprNode n;
    n.pos = static_cast<int32_t>(Pos(t));
    switch (t.kind) {
      case Tok::kInt:
        n.lit_type = VT::kInt;
        n.lit_i = t.i;
        return Add(std::move(n));
      case Tok::kFloat:
        n.lit_type = VT::kFloat;
        n.lit_f = t.f;
        return Add(std::move(n));
      case Tok::kString:
        n.lit_type = VT::kString;
        n.lit_s = t.text;
        return Add(std::move(n));
      case Tok::kQuotedIdent:
        n.kind = NodeKind::kColumn;
        n.name = t.text;
        return Add(std::move(n));
      case Tok::kLParen: {
        NestGuard g(nest_);
        RETURN_IF_ERROR(CheckNest(t));
        ASSIGN_OR_RETURN(int32_t inner, ParseOr());
        if (Peek().kind != Tok::kRParen) {
          if (Peek().kind == Tok::kEnd) return PosError(Pos(t), "unclosed '('");
          return Unexpected(Peek());
        }
        Next();
        return inner;
      }
      case Tok::kIdent: {
        const std::string lower = Lower(t.text);
        if (lower == "true" || lower == "false") {
          n.lit_type = VT::kBool;
          n.lit_i = lower == "true";
          return Add(std::move(n));
        }
        if (lower == "null") return Add(std::move(n));
        if (Peek().kind == Tok::kLParen) {
          Next();
          NestGuard g(nest_);
          RETURN_IF_ERROR(CheckNest(t));
          n.kind = NodeKind::kCall;
          n.name = lower;
          if (Peek().kind == Tok::kRParen) {
            Next();
            return Add(std::move(n));
          }
          while (true) {
            ASSIGN_OR_RETURN(int32_t a, ParseOr());
            n.args.push_back(a);
            if (Peek().kind == Tok::kComma) {
              Next();
              continue;
            }
            if (Peek().kind == Tok::kRParen) {
              Next();
              break;
            }
            if (Peek().kind == Tok::kEnd) return PosError(n.pos, "unclosed '(' of " + lower + "(");
            return Unexpected(Peek());
          }
          return Add(std::move(n));
        }
        if (IsKeyword(lower)) return Unexpected(t);
        n.kind = NodeKind::kColumn;
        n.name = t.text;
        return Add(std::move(n));
      }
      default: return Unexpected(t);
    }
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t idx_ = 0;
  int nest_ = 0;
  Expr& out_;
};

}  // namespace

Result<Expr> ParseExpr(std::string_view text) {
  if (text.size() > kMaxExprBytes) {
    return PosError(static_cast<int64_t>(kMaxExprBytes) + 1,
                    "expression is longer than " + std::to_string(kMaxExprBytes) + " bytes");
  }
  ASSIGN_OR_RETURN(std::vector<Token> toks, Lex(text));
  if (toks.size() == 1) return PosError(1, "empty expression");
  Expr e;
  Parser p(text, std::move(toks), e);
  ASSIGN_OR_RETURN(int32_t root, p.Run());
  e.set_root(root);
  e.set_text(std::string(text));
  return e;
}


// ---------------------------------------------------------------------------------------------------
// Type checking

namespace {

std::optional<VT> Common(VT a, VT b) {
  if (a == VT::kNull) return b;
  if (b == VT::kNull) return a;
  if (a == b) return a;
  if (IsNumeric(a) && IsNumeric(b)) return VT::kFloat;
  return std::nullopt;
}

// Refuses patterns that backtrack catastrophically in std::regex: a quantified group that itself contains a
// quantifier or an alternation ((a+)+, (a|a)*), and back-references. Returns the 0-based offending offset.
std::optional<std::string> UnsafeRegex(std::string_view p) {
  struct Group {
    bool inner_quant = false;
    bool alternation = false;
  };
  std::vector<Group> stack(1);
  bool last_group_risky = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    bool closed_risky = false;
    if (c == '\\') {
      if (i + 1 < p.size() && p[i + 1] >= '1' && p[i + 1] <= '9') return "back-references are not allowed";
      ++i;
    } else if (c == '[') {
      ++i;
      if (i < p.size() && p[i] == '^') ++i;
      if (i < p.size() && p[i] == ']') ++i;
      while (i < p.size() && p[i] != ']') {
        if (p[i] == '\\') ++i;
        ++i;
      }
    } else if (c == '(') {
      stack.push_back({});
    } else if (c == ')') {
      if (stack.size() > 1) {
        Group g = stack.back();
        stack.pop_back();
        closed_risky = g.inner_quant || g.alternation;
        if (g.inner_quant) stack.back().inner_quant = true;
      }
    } else if (c == '|') {
      stack.back().alternation = true;
    } else if (c == '*' || c == '+' || c == '?' || c == '{') {
      if (last_group_risky && c != '?') return "nested quantifiers can backtrack catastrophically";
      stack.back().inner_quant = true;
      if (c == '{') {
        while (i < p.size() && p[i] != '}') ++i;
      }
    }
    last_group_risky = closed_risky;
  }
  return std::nullopt;
}

struct Checked {
  std::vector<VT> type;
  std::vector<int32_t> column;                            // column nodes: index into the table
  std::vector<std::shared_ptr<const std::regex>> regex;  // regex_match nodes
  std::vector<uint8_t> as_datetime;                       // string literals compared with a datetime
  std::vector<int64_t> dt_value;
};

struct FnSpec {
  const char* name;
  int min_args;
  int max_args;  // -1: any number
};

constexpr FnSpec kFunctions[] = {
    {"abs", 1, 1},          {"round", 1, 2},      {"floor", 1, 1},        {"ceil", 1, 1},
    {"log", 1, 1},          {"log10", 1, 1},      {"exp", 1, 1},          {"sqrt", 1, 1},
    {"pow", 2, 2},          {"min", 1, -1},       {"max", 1, -1},         {"coalesce", 1, -1},
    {"if", 3, 3},           {"lower", 1, 1},      {"upper", 1, 1},        {"trim", 1, 1},
    {"length", 1, 1},       {"contains", 2, 2},   {"starts_with", 2, 2},  {"ends_with", 2, 2},
    {"replace", 3, 3},      {"substr", 2, 3},     {"regex_match", 2, 2},  {"year", 1, 1},
    {"month", 1, 1},        {"day", 1, 1},        {"hour", 1, 1},         {"weekday", 1, 1},
    {"days_between", 2, 2}, {"date", 1, 1},       {"to_int", 1, 1},       {"to_float", 1, 1},
    {"to_string", 1, 1},    {"is_null", 1, 1},
};

class Checker {
 public:
  Checker(const Expr& e, const Table& t) : e_(e), t_(t) {
    const size_t n = e.nodes().size();
    c_.type.assign(n, VT::kNull);
    c_.column.assign(n, -1);
    c_.regex.resize(n);
    c_.as_datetime.assign(n, 0);
    c_.dt_value.assign(n, 0);
  }

  Result<Checked> Run() {
    if (e_.root() < 0) return Status::InvalidArgument("empty expression");
    RETURN_IF_ERROR(Check(e_.root()).status());
    return std::move(c_);
  }

 private:
  const ExprNode& N(int32_t id) const { return e_.nodes()[static_cast<size_t>(id)]; }

  // A datetime compared with a text literal: parse the literal once, here.
  Status DatetimeLiteral(int32_t dt_side, int32_t other) {
    const ExprNode& o = N(other);
    if (c_.type[static_cast<size_t>(dt_side)] != VT::kDatetime || o.kind != NodeKind::kLiteral ||
        o.lit_type != VT::kString) {
      return Status::Ok();
    }
    int64_t micros = 0;
    if (!ParseDatetimeMicros(TrimBlanks(o.lit_s), &micros)) {
      return PosError(o.pos, "'" + o.lit_s + "' is not a date or datetime (expected e.g. 2024-01-31)");
    }
    c_.as_datetime[static_cast<size_t>(other)] = 1;
    c_.dt_value[static_cast<size_t>(other)] = micros;
    c_.type[static_cast<size_t>(other)] = VT::kDatetime;
    return Status::Ok();
  }

  Result<VT> Comparable(int32_t a, int32_t b, int32_t pos, const std::string& what) {
    RETURN_IF_ERROR(DatetimeLiteral(a, b));
    RETURN_IF_ERROR(DatetimeLiteral(b, a));
    const VT ta = c_.type[static_cast<size_t>(a)], tb = c_.type[static_cast<size_t>(b)];
    auto common = Common(ta, tb);
    if (!common) {
      return PosError(pos, std::string("cannot ") + what + " " + VTName(ta) + " with " + VTName(tb));
    }
    return *common;
  }

  Status Need(const ExprNode& call, size_t arg, bool ok, const char* expected) {
    if (ok) return Status::Ok();
    const VT got = c_.type[static_cast<size_t>(call.args[arg])];
    return PosError(call.pos, call.name + "() argument " + std::to_string(arg + 1) + " must be " + expected +
                                  ", got " + VTName(got));
  }

  Result<VT> Check(int32_t id) {
    const ExprNode& n = N(id);
    for (int32_t a : n.args) RETURN_IF_ERROR(Check(a).status());
    ASSIGN_OR_RETURN(VT t, CheckNode(id, n));
    c_.type[static_cast<size_t>(id)] = t;
    return t;
  }

  VT T(int32_t id) const { return c_.type[static_cast<size_t>(id)]; }

  Result<VT> CheckNode(int32_t id, const ExprNode& n) {
    switch (n.kind) {
      case NodeKind::kLiteral: return n.lit_type;
      case NodeKind::kColumn: {
        const int idx = t_.FindColumn(n.name);
        if (idx < 0) {
          std::vector<std::string> names;
          for (const Column& c : t_.columns) names.push_back(c.name);
          std::string msg = "unknown column '" + n.name + "'";
          const std::string near = ClosestName(n.name, names);
          if (!near.empty()) msg += " (did you mean '" + near + "'?)";
          return PosError(n.pos, msg);
        }
        c_.column[static_cast<size_t>(id)] = idx;
        return FromColumnType(t_.columns[static_cast<size_t>(idx)].type);
      }
      case NodeKind::kUnary: {
        const VT a = T(n.args[0]);
        if (n.name == "not") {
          if (a != VT::kBool && a != VT::kNull) return PosError(n.pos, std::string("'not' needs a boolean, got ") + VTName(a));
          return VT::kBool;
        }
        if (!IsNumeric(a) && a != VT::kNull) {
          return PosError(n.pos, std::string("unary '") + (n.name == "neg" ? "-" : "+") + "' needs a number, got " +
                                     VTName(a));
        }
        return a;
      }
      case NodeKind::kBinary: {
        const VT a = T(n.args[0]), b = T(n.args[1]);
        const std::string& op = n.name;
        if (op == "and" || op == "or") {
          if ((a != VT::kBool && a != VT::kNull) || (b != VT::kBool && b != VT::kNull)) {
            return PosError(n.pos, "'" + op + "' needs booleans, got " + VTName(a) + " and " + VTName(b));
          }
          return VT::kBool;
        }
        if (op == "||") return VT::kString;
        if (op == "+" || op == "-" || op == "*" || op == "/" || op == "%") {
          if ((!IsNumeric(a) && a != VT::kNull) || (!IsNumeric(b) && b != VT::kNull)) {
            std::string msg = "operator '" + op + "' cannot apply to " + VTName(a) + " and " + VTName(b);
            if (a == VT::kString || b == VT::kString) msg += " (use || to join text, to_float() to convert)";
            if (a == VT::kDatetime || b == VT::kDatetime) msg += " (use days_between() for dates)";
            return PosError(n.pos, msg);
          }
          if (op == "/") return VT::kFloat;
          if (a == VT::kFloat || b == VT::kFloat) return VT::kFloat;
          if (a == VT::kInt || b == VT::kInt) return VT::kInt;
          return VT::kNull;
        }
        RETURN_IF_ERROR(Comparable(n.args[0], n.args[1], n.pos, "compare").status());
        return VT::kBool;
      }
      case NodeKind::kIsNull: return VT::kBool;
      case NodeKind::kIn:
        for (size_t i = 1; i < n.args.size(); ++i) {
          RETURN_IF_ERROR(Comparable(n.args[0], n.args[i], N(n.args[i]).pos, "compare").status());
        }
        return VT::kBool;
      case NodeKind::kBetween:
        RETURN_IF_ERROR(Comparable(n.args[0], n.args[1], n.pos, "compare").status());
        RETURN_IF_ERROR(Comparable(n.args[0], n.args[2], n.pos, "compare").status());
        return VT::kBool;
      case NodeKind::kCall: return CheckCall(id, n);
    }
    return Status::Internal("unknown expression node");
  }

  Result<VT> CheckCall(int32_t id, const ExprNode& n) {
    const FnSpec* spec = nullptr;
    for (const FnSpec& f : kFunctions) {
      if (n.name == f.name) spec = &f;
    }
    if (spec == nullptr) {
      std::vector<std::string> names;
      for (const FnSpec& f : kFunctions) names.push_back(f.name);
      std::string msg = "unknown function '" + n.name + "'";
      const std::string near = ClosestName(n.name, names);
      if (!near.empty()) msg += " (did you mean '" + near + "'?)";
      return PosError(n.pos, msg);
    }
    const int argc = static_cast<int>(n.args.size());
    if (argc < spec->min_args || (spec->max_args >= 0 && argc > spec->max_args)) {
      std::string want = spec->max_args < 0 ? "at least " + std::to_string(spec->min_args)
                         : spec->min_args == spec->max_args
                             ? std::to_string(spec->min_args)
                             : std::to_string(spec->min_args) + " or " + std::to_string(spec->max_args);
      return PosError(n.pos, n.name + "() takes " + want + " argument" + (want == "1" ? "" : "s") + ", got " +
                                 std::to_string(argc));
    }
    std::vector<VT> a;
    for (int32_t x : n.args) a.push_back(T(x));
    auto num = [&](size_t i) { return IsNumeric(a[i]) || a[i] == VT::kNull; };
    auto str = [&](size_t i) { return a[i] == VT::kString || a[i] == VT::kNull; };
    auto dt = [&](size_t i) { return a[i] == VT::kDatetime || a[i] == VT::kNull; };
    auto integer = [&](size_t i) { return a[i] == VT::kInt || a[i] == VT::kNull; };
    const std::string& f = n.name;
    if (f == "abs" || f == "floor" || f == "ceil") {
      RETURN_IF_ERROR(Need(n, 0, num(0), "a number"));
      return a[0] == VT::kNull ? VT::kFloat : a[0];
    }
    if (f == "round") {
      RETURN_IF_ERROR(Need(n, 0, num(0), "a number"));
      if (argc == 2) RETURN_IF_ERROR(Need(n, 1, integer(1), "an integer"));
      return (a[0] == VT::kInt && argc == 1) ? VT::kInt : VT::kFloat;
    }
    if (f == "log" || f == "log10" || f == "exp" || f == "sqrt") {
      RETURN_IF_ERROR(Need(n, 0, num(0), "a number"));
      return VT::kFloat;
    }
    if (f == "pow") {
      RETURN_IF_ERROR(Need(n, 0, num(0), "a number"));
      RETURN_IF_ERROR(Need(n, 1, num(1), "a number"));
      return VT::kFloat;
    }
    if (f == "min" || f == "max" || f == "coalesce" || f == "if") {
      const size_t first = f == "if" ? 1 : 0;
      if (f == "if") RETURN_IF_ERROR(Need(n, 0, a[0] == VT::kBool || a[0] == VT::kNull, "a boolean"));
      VT t = VT::kNull;
      for (size_t i = first; i < a.size(); ++i) {
        auto c = Common(t, a[i]);
        if (!c) {
          return PosError(n.pos, f + "() arguments must have one type, got " + VTName(t) + " and " + VTName(a[i]));
        }
        t = *c;
      }
      return t;
    }
    if (f == "lower" || f == "upper" || f == "trim") {
      RETURN_IF_ERROR(Need(n, 0, str(0), "a string"));
      return VT::kString;
    }
    if (f == "length") {
      RETURN_IF_ERROR(Need(n, 0, str(0), "a string"));
      return VT::kInt;
    }
    if (f == "contains" || f == "starts_with" || f == "ends_with") {
      RETURN_IF_ERROR(Need(n, 0, str(0), "a string"));
      RETURN_IF_ERROR(Need(n, 1, str(1), "a string"));
      return VT::kBool;
    }
    if (f == "replace") {
      for (size_t i = 0; i < 3; ++i) RETURN_IF_ERROR(Need(n, i, str(i), "a string"));
      return VT::kString;
    }
    if (f == "substr") {
      RETURN_IF_ERROR(Need(n, 0, str(0), "a string"));
      for (size_t i = 1; i < a.size(); ++i) RETURN_IF_ERROR(Need(n, i, integer(i), "an integer"));
      return VT::kString;
    }
    if (f == "regex_match") {
      RETURN_IF_ERROR(Need(n, 0, str(0), "a string"));
      const ExprNode& p = N(n.args[1]);
      if (p.kind != NodeKind::kLiteral || p.lit_type != VT::kString) {
        return PosError(p.pos, "regex_match() pattern must be a text literal");
      }
      if (p.lit_s.size() > kMaxRegexPatternBytes) {
        return PosError(p.pos, "regex pattern is longer than " + std::to_string(kMaxRegexPatternBytes) + " bytes");
      }
      if (auto why = UnsafeRegex(p.lit_s)) return PosError(p.pos, "regex pattern refused: " + *why);
      try {
        c_.regex[static_cast<size_t>(id)] = std::make_shared<const std::regex>(p.lit_s, kWholeMatchRegexFlags);
      } catch (const std::regex_error& e) {
        return PosError(p.pos, std::string("invalid regex pattern: ") + e.what());
      }
      return VT::kBool;
    }
    if (f == "year" || f == "month" || f == "day" || f == "hour" || f == "weekday") {
      RETURN_IF_ERROR(Need(n, 0, dt(0), "a datetime"));
      return VT::kInt;
    }
    if (f == "days_between") {
      RETURN_IF_ERROR(Need(n, 0, dt(0), "a datetime"));
      RETURN_IF_ERROR(Need(n, 1, dt(1), "a datetime"));
      return VT::kInt;
    }
    if (f == "date") {
      RETURN_IF_ERROR(Need(n, 0, str(0) || a[0] == VT::kDatetime, "a string"));
      const ExprNode& p = N(n.args[0]);
      int64_t micros = 0;
      if (p.kind == NodeKind::kLiteral && p.lit_type == VT::kString &&
          !ParseDatetimeMicros(TrimBlanks(p.lit_s), &micros)) {
        return PosError(p.pos, "'" + p.lit_s + "' is not a date or datetime (expected e.g. 2024-01-31)");
      }
      return VT::kDatetime;
    }
    if (f == "to_int") return VT::kInt;
    if (f == "to_float") return VT::kFloat;
    if (f == "to_string") return VT::kString;
    if (f == "is_null") return VT::kBool;
    return Status::Internal("function without a type rule: " + f);
  }

  const Expr& e_;
  const Table& t_;
  Checked c_;
};

}  // namespace

Result<ColumnType> CheckExpr(const Expr& e, const Table& schema_source) {
  Checker c(e, schema_source);
  ASSIGN_OR_RETURN(Checked k, c.Run());
  return ToColumnType(k.type[static_cast<size_t>(e.root())]);
}

}  // namespace lathe

// ---------------------------------------------------------------------------------------------------
// Evaluation

namespace lathe {
namespace {

constexpr int64_t kMicrosPerDay = 86400LL * 1000000LL;

// A column-valued intermediate: either borrowed from the table (views) or owned; `scalar` values have one
// row that broadcasts. Held by unique_ptr so the views into owned vectors stay valid.
struct Val {
  VT type = VT::kNull;
  bool scalar = true;
  std::vector<int64_t> oi;
  std::vector<double> of;
  std::vector<uint8_t> ob;
  std::vector<int32_t> oc;
  std::vector<std::string> odict;
  std::vector<uint8_t> ov;
  const int64_t* i = nullptr;
  const double* f = nullptr;
  const uint8_t* b = nullptr;
  const int32_t* c = nullptr;
  const std::vector<std::string>* dict = nullptr;
  const uint8_t* v = nullptr;

  size_t At(size_t r) const { return scalar ? 0 : r; }
  bool Valid(size_t r) const { return v[At(r)] != 0; }
  double Num(size_t r) const { return type == VT::kInt ? static_cast<double>(i[At(r)]) : f[At(r)]; }
  std::string_view Str(size_t r) const { return (*dict)[static_cast<size_t>(c[At(r)])]; }
  void Bind() {
    i = oi.data();
    f = of.data();
    b = ob.data();
    c = oc.data();
    dict = &odict;
    v = ov.data();
  }
};
using VP = std::unique_ptr<Val>;

VP NewVal(VT t, size_t m, bool scalar) {
  auto v = std::make_unique<Val>();
  v->type = t;
  v->scalar = scalar;
  v->ov.assign(m, 0);
  switch (t) {
    case VT::kInt:
    case VT::kDatetime: v->oi.assign(m, 0); break;
    case VT::kFloat: v->of.assign(m, 0.0); break;
    case VT::kBool: v->ob.assign(m, 0); break;
    case VT::kString: v->oc.assign(m, 0); break;
    case VT::kNull: break;
  }
  v->Bind();
  return v;
}

struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// Builds a dictionary-encoded string result.
class StrOut {
 public:
  StrOut(size_t m, bool scalar) : val_(NewVal(VT::kString, m, scalar)) {}
  int32_t Intern(std::string_view s) {
    auto it = index_.find(s);
    if (it != index_.end()) return it->second;
    const int32_t code = static_cast<int32_t>(val_->odict.size());
    val_->odict.emplace_back(s);
    index_.emplace(std::string(s), code);
    return code;
  }
  void Set(size_t r, std::string_view s) { SetCode(r, Intern(s)); }
  void SetCode(size_t r, int32_t code) {
    val_->oc[r] = code;
    val_->ov[r] = 1;
  }
  VP Finish() {
    val_->Bind();
    return std::move(val_);
  }

 private:
  VP val_;
  std::unordered_map<std::string, int32_t, SvHash, std::equal_to<>> index_;
};

std::string FormatFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string FormatAt(const Val& v, size_t r) {
  const size_t k = v.At(r);
  switch (v.type) {
    case VT::kInt: return std::to_string(v.i[k]);
    case VT::kFloat: return FormatFloat(v.f[k]);
    case VT::kBool: return v.b[k] ? "true" : "false";
    case VT::kDatetime: return FormatDatetimeMicros(v.i[k]);
    case VT::kString: return std::string(v.Str(r));
    case VT::kNull: return {};
  }
  return {};
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

// Byte offset of code point `cp` (0-based) in s, or s.size().
size_t Utf8Offset(std::string_view s, int64_t cp) {
  if (cp <= 0) return 0;
  int64_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == cp) return i;
      ++seen;
    }
  }
  return s.size();
}

std::string_view TrimSpace(std::string_view s) {
  size_t b = 0, e = s.size();
  auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (b < e && sp(s[b])) ++b;
  while (e > b && sp(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool DoubleToInt(double x, int64_t* out) {
  if (!std::isfinite(x)) return false;
  const double t = std::trunc(x);
  if (t < -9223372036854775808.0 || t >= 9223372036854775808.0) return false;
  *out = static_cast<int64_t>(t);
  return true;
}

enum class Cmp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

Cmp CmpFromName(const std::string& op) {
  if (op == "=") return Cmp::kEq;
  if (op == "!=") return Cmp::kNe;
  if (op == "<") return Cmp::kLt;
  if (op == "<=") return Cmp::kLe;
  if (op == ">") return Cmp::kGt;
  return Cmp::kGe;
}

template <class T>
bool CmpApply(Cmp op, const T& a, const T& b) {
  switch (op) {
    case Cmp::kEq: return a == b;
    case Cmp::kNe: return a != b;
    case Cmp::kLt: return a < b;
    case Cmp::kLe: return a <= b;
    case Cmp::kGt: return a > b;
    case Cmp::kGe: return a >= b;
  }
  return false;
}

// Branch-free column kernels for the common cases (numbers, comparisons, and/or): every row is computed, a
// missing operand only clears the row's validity. XS/YS: the operand is a scalar broadcast to every row.
// __restrict: the validity bytes may otherwise alias the values, which stops vectorization.
template <bool XS, bool YS, class X, class Y, class F>
void ArithRows(size_t m, const X* __restrict x, const uint8_t* __restrict xv, const Y* __restrict y,
               const uint8_t* __restrict yv, double* __restrict out, uint8_t* __restrict ov, bool div, F f) {
  for (size_t r = 0; r < m; ++r) {
    const size_t p = XS ? 0 : r, q = YS ? 0 : r;
    const double a = static_cast<double>(x[p]), b = static_cast<double>(y[q]);
    out[r] = f(a, b);
    ov[r] = static_cast<uint8_t>((xv[p] != 0) & (yv[q] != 0) & (!div | (b != 0)));
  }
}

template <bool XS, bool YS, class T, class F>
void CompareRows(size_t m, const T* __restrict x, const uint8_t* __restrict xv, const T* __restrict y,
                 const uint8_t* __restrict yv, uint8_t* __restrict ob, uint8_t* __restrict ov, F f) {
  for (size_t r = 0; r < m; ++r) {
    const size_t p = XS ? 0 : r, q = YS ? 0 : r;
    ob[r] = static_cast<uint8_t>(f(x[p], y[q]));
    ov[r] = static_cast<uint8_t>((xv[p] != 0) & (yv[q] != 0));
  }
}

// Three-valued and/or: a known false (and) or known true (or) decides the row even if the other side is missing.
template <bool XS, bool YS>
void LogicRows(size_t m, const uint8_t* __restrict x, const uint8_t* __restrict xv, const uint8_t* __restrict y,
               const uint8_t* __restrict yv, uint8_t* __restrict ob, uint8_t* __restrict ov, bool is_and) {
  for (size_t r = 0; r < m; ++r) {
    const size_t p = XS ? 0 : r, q = YS ? 0 : r;
    const unsigned av = xv[p] != 0, bv = yv[q] != 0, ax = x[p] != 0, bx = y[q] != 0;
    if (is_and) {
      ov[r] = static_cast<uint8_t>((av & !ax) | (bv & !bx) | (av & bv));
      ob[r] = static_cast<uint8_t>(av & bv & ax & bx);
    } else {
      const unsigned known_true = (av & ax) | (bv & bx);
      ov[r] = static_cast<uint8_t>(known_true | (av & bv));
      ob[r] = static_cast<uint8_t>(known_true);
    }
  }
}

// Calls body(std::bool_constant<XS>, std::bool_constant<YS>) with the scalar flags as compile-time constants.
template <class B>
void WithScalars(bool xs, bool ys, B body) {
  if (xs && ys) body(std::true_type{}, std::true_type{});
  else if (xs) body(std::true_type{}, std::false_type{});
  else if (ys) body(std::false_type{}, std::true_type{});
  else body(std::false_type{}, std::false_type{});
}

template <class T, class B>
bool WithCmp(Cmp op, B body) {
  switch (op) {
    case Cmp::kEq: body([](const T& a, const T& b) { return a == b; }); return true;
    case Cmp::kNe: body([](const T& a, const T& b) { return a != b; }); return true;
    case Cmp::kLt: body([](const T& a, const T& b) { return a < b; }); return true;
    case Cmp::kLe: body([](const T& a, const T& b) { return a <= b; }); return true;
    case Cmp::kGt: body([](const T& a, const T& b) { return a > b; }); return true;
    case Cmp::kGe: body([](const T& a, const T& b) { return a >= b; }); return true;
  }
  return false;
}

class Evaluator {
 public:
  Evaluator(const Expr& e, const Table& t, Checked k) : e_(e), t_(t), k_(std::move(k)), n_(static_cast<size_t>(t.num_rows)) {}

  Result<Column> Run() {
    ASSIGN_OR_RETURN(VP v, Eval(e_.root()));
    VT t = v->type;
    if (!v->scalar && v->v == v->ov.data() && v->ov.size() == n_) {
      // A computed (owned) number or boolean column is handed over instead of copied; missing rows' value
      // slots are zeroed as NullColumn leaves them.
      Column out;
      out.type = ToColumnType(t);
      auto take = [&](auto& owned, auto* view, auto& dest) {
        if (view != owned.data() || owned.size() != n_) return false;
        const uint8_t* __restrict ok = v->ov.data();
        auto* __restrict x = owned.data();
        for (size_t r = 0; r < n_; ++r) x[r] = ok[r] ? x[r] : 0;
        dest = std::move(owned);
        return true;
      };
      bool taken = false;
      switch (t) {
        case VT::kInt:
        case VT::kDatetime: taken = take(v->oi, v->i, out.i64); break;
        case VT::kFloat: taken = take(v->of, v->f, out.f64); break;
        case VT::kBool: taken = take(v->ob, v->b, out.b); break;
        default: break;
      }
      if (taken) {
        out.valid = std::move(v->ov);
        for (uint8_t& ok : out.valid) ok = ok != 0;
        return out;
      }
    }
    Column out = NullColumn("", ToColumnType(t), n_);
    if (t == VT::kNull) return out;
    for (size_t r = 0; r < n_; ++r) {
      if (!v->Valid(r)) continue;
      out.valid[r] = 1;
      const size_t k = v->At(r);
      switch (t) {
        case VT::kInt:
        case VT::kDatetime: out.i64[r] = v->i[k]; break;
        case VT::kFloat: out.f64[r] = v->f[k]; break;
        case VT::kBool: out.b[r] = v->b[k]; break;
        case VT::kString: out.codes[r] = v->c[k]; break;
        case VT::kNull: break;
      }
    }
    if (t == VT::kString) {
      out.dict = *v->dict;
      if (!v->scalar && v->dict != &v->odict) CompactDictionary(out);  // borrowed dictionary: drop unused entries
    }
    return out;
  }

  // The rows where the predicate is true.
  Result<std::vector<uint8_t>> Mask() {
    ASSIGN_OR_RETURN(VP v, Eval(e_.root()));
    if (v->type != VT::kBool && v->type != VT::kNull) {
      return PosError(e_.nodes()[static_cast<size_t>(e_.root())].pos,
                      std::string("a filter must be a boolean expression, got ") + VTName(v->type));
    }
    std::vector<uint8_t> keep(n_, 0);
    if (v->type == VT::kNull) return keep;
    if (v->scalar) {
      std::fill(keep.begin(), keep.end(), static_cast<uint8_t>(v->v[0] != 0 && v->b[0] != 0));
      return keep;
    }
    const uint8_t* __restrict valid = v->v;
    const uint8_t* __restrict b = v->b;
    uint8_t* __restrict out = keep.data();
    for (size_t r = 0; r < n_; ++r) out[r] = static_cast<uint8_t>((valid[r] != 0) & (b[r] != 0));
    return keep;
  }

 private:
  const ExprNode& N(int32_t id) const { return e_.nodes()[static_cast<size_t>(id)]; }
  VT T(int32_t id) const { return k_.type[static_cast<size_t>(id)]; }
  size_t Rows(bool scalar) const { return scalar ? 1 : n_; }

  VP AllNull(VT t, bool scalar) const { return NewVal(t, Rows(scalar), scalar); }

  VP Coerce(VP v, VT t) const {
    if (v->type == t) return v;
    if (v->type == VT::kNull) return AllNull(t, v->scalar);
    if (v->type == VT::kInt && t == VT::kFloat) {
      const size_t m = Rows(v->scalar);
      VP o = NewVal(VT::kFloat, m, v->scalar);
      for (size_t r = 0; r < m; ++r) {
        o->ov[r] = v->v[r];
        o->of[r] = static_cast<double>(v->i[r]);
      }
      return o;
    }
    return v;
  }

  // Per-distinct-value evaluation of a string function: f(string_view, out) -> bool (false = null) is
  // called once per dictionary entry actually used, and the result is spread to the rows.
  template <class F>
  VP MapStringToString(const Val& s, F f) const {
    const size_t m = Rows(s.scalar);
    StrOut out(m, s.scalar);
    std::vector<int32_t> memo(s.dict->size(), -2);  // -2 not computed, -1 null
    std::string buf;
    for (size_t r = 0; r < m; ++r) {
      if (!s.v[r]) continue;
      const size_t k = static_cast<size_t>(s.c[r]);
      if (memo[k] == -2) {
        buf.clear();
        memo[k] = f((*s.dict)[k], buf) ? out.Intern(buf) : -1;
      }
      if (memo[k] >= 0) out.SetCode(r, memo[k]);
    }
    return out.Finish();
  }

  // Like MapStringToString for int/float/bool results: f(string_view, R*) -> bool (false = null).
  template <class R, class F>
  VP MapString(const Val& s, VT t, F f) const {
    const size_t m = Rows(s.scalar);
    VP o = NewVal(t, m, s.scalar);
    std::vector<uint8_t> state(s.dict->size(), 0);  // 0 not computed, 1 valid, 2 null
    std::vector<R> cache(s.dict->size());
    for (size_t r = 0; r < m; ++r) {
      if (!s.v[r]) continue;
      const size_t k = static_cast<size_t>(s.c[r]);
      if (state[k] == 0) state[k] = f((*s.dict)[k], &cache[k]) ? 1 : 2;
      if (state[k] == 1) {
        o->ov[r] = 1;
        Store(*o, r, cache[k]);
      }
    }
    return o;
  }

  static void Store(Val& o, size_t r, int64_t x) { o.oi[r] = x; }
  static void Store(Val& o, size_t r, double x) { o.of[r] = x; }
  static void Store(Val& o, size_t r, uint8_t x) { o.ob[r] = x; }

  VP ToStringVal(VP v) const {
    if (v->type == VT::kString) return v;
    if (v->type == VT::kNull) return AllNull(VT::kString, v->scalar);
    const size_t m = Rows(v->scalar);
    StrOut out(m, v->scalar);
    for (size_t r = 0; r < m; ++r) {
      if (v->v[r]) out.Set(r, FormatAt(*v, r));
    }
    return out.Finish();
  }

  Result<VP> Eval(int32_t id) {
    const ExprNode& n = N(id);
    switch (n.kind) {
      case NodeKind::kLiteral: return Literal(id, n);
      case NodeKind::kColumn: {
        const Column& c = t_.columns[static_cast<size_t>(k_.column[static_cast<size_t>(id)])];
        auto v = std::make_unique<Val>();
        v->type = FromColumnType(c.type);
        v->scalar = false;
        v->i = c.i64.data();
        v->f = c.f64.data();
        v->b = c.b.data();
        v->c = c.codes.data();
        v->dict = &c.dict;
        v->v = c.valid.data();
        return v;
      }
      case NodeKind::kUnary: {
        ASSIGN_OR_RETURN(VP a, Eval(n.args[0]));
        return Unary(n, std::move(a), T(id));
      }
      case NodeKind::kBinary: {
        ASSIGN_OR_RETURN(VP a, Eval(n.args[0]));
        ASSIGN_OR_RETURN(VP b, Eval(n.args[1]));
        return Binary(n, std::move(a), std::move(b), T(id));
      }
      case NodeKind::kIsNull: {
        ASSIGN_OR_RETURN(VP a, Eval(n.args[0]));
        return IsNull(*a, n.negated);
      }
      case NodeKind::kIn: return In(n);
      case NodeKind::kBetween: {
        ASSIGN_OR_RETURN(VP x, Eval(n.args[0]));
        ASSIGN_OR_RETURN(VP lo, Eval(n.args[1]));
        ASSIGN_OR_RETURN(VP hi, Eval(n.args[2]));
        VT t = *Common(*Common(x->type, lo->type), hi->type);
        x = Coerce(std::move(x), t);
        lo = Coerce(std::move(lo), t);
        hi = Coerce(std::move(hi), t);
        VP ge = Compare(*x, *lo, Cmp::kGe);
        VP le = Compare(*x, *hi, Cmp::kLe);
        VP both = Logic(*ge, *le, true);
        return n.negated ? Not(*both) : std::move(both);
      }
      case NodeKind::kCall: return Call(id, n);
    }
    return Status::Internal("unknown expression node");
  }

  VP Literal(int32_t id, const ExprNode& n) const {
    if (k_.as_datetime[static_cast<size_t>(id)]) {
      VP v = NewVal(VT::kDatetime, 1, true);
      v->oi[0] = k_.dt_value[static_cast<size_t>(id)];
      v->ov[0] = 1;
      return v;
    }
    VP v = NewVal(n.lit_type, 1, true);
    if (n.lit_type == VT::kNull) return v;
    v->ov[0] = 1;
    switch (n.lit_type) {
      case VT::kInt: v->oi[0] = n.lit_i; break;
      case VT::kFloat: v->of[0] = n.lit_f; break;
      case VT::kBool: v->ob[0] = n.lit_i != 0; break;
      case VT::kString:
        v->odict.push_back(n.lit_s);
        v->oc[0] = 0;
        break;
      default: break;
    }
    v->Bind();
    return v;
  }

  VP Not(const Val& a) const {
    const size_t m = Rows(a.scalar);
    VP o = NewVal(VT::kBool, m, a.scalar);
    if (a.type == VT::kNull) return o;
    for (size_t r = 0; r < m; ++r) {
      o->ov[r] = a.v[r];
      o->ob[r] = !a.b[r];
    }
    return o;
  }

  VP IsNull(const Val& a, bool negated) const {
    const size_t m = Rows(a.scalar);
    VP o = NewVal(VT::kBool, m, a.scalar);
    for (size_t r = 0; r < m; ++r) {
      o->ov[r] = 1;
      o->ob[r] = (a.v[r] != 0) == negated;
    }
    return o;
  }

  VP Unary(const ExprNode& n, VP a, VT t) const {
    if (n.name == "not") return Not(*a);
    if (a->type == VT::kNull || n.name == "pos") return a;
    const size_t m = Rows(a->scalar);
    VP o = NewVal(t, m, a->scalar);
    for (size_t r = 0; r < m; ++r) {
      if (!a->v[r]) continue;
      if (t == VT::kInt) {
        if (a->i[r] == INT64_MIN) continue;
        o->oi[r] = -a->i[r];
      } else {
        o->of[r] = -a->f[r];
      }
      o->ov[r] = 1;
    }
    return o;
  }

  // Three-valued and (is_and) / or.
  VP Logic(const Val& a, const Val& b, bool is_and) const {
    const bool scalar = a.scalar && b.scalar;
    const size_t m = Rows(scalar);
    VP o = NewVal(VT::kBool, m, scalar);
    const bool an = a.type == VT::kNull, bn = b.type == VT::kNull;
    if (!an && !bn) {
      WithScalars(a.scalar, b.scalar, [&](auto xs, auto ys) {
        LogicRows<decltype(xs)::value, decltype(ys)::value>(m, a.b, a.v, b.b, b.v, o->ob.data(), o->ov.data(), is_and);
      });
      return o;
    }
    for (size_t r = 0; r < m; ++r) {
      const bool av = !an && a.Valid(r), bv = !bn && b.Valid(r);
      const bool ax = av && a.b[a.At(r)], bx = bv && b.b[b.At(r)];
      if (is_and) {
        if ((av && !ax) || (bv && !bx)) {
          o->ov[r] = 1;
          o->ob[r] = 0;
        } else if (av && bv) {
          o->ov[r] = 1;
          o->ob[r] = 1;
        }
      } else {
        if (ax || bx) {
          o->ov[r] = 1;
          o->ob[r] = 1;
        } else if (av && bv) {
          o->ov[r] = 1;
          o->ob[r] = 0;
        }
      }
    }
    return o;
  }

  template <class F>
  void Each2(const Val& a, const Val& b, size_t m, F f) const {
    for (size_t r = 0; r < m; ++r) {
      if (a.Valid(r) && b.Valid(r)) f(r, a.At(r), b.At(r));
    }
  }

  // Compares two values of one type (after Coerce).
  VP Compare(const Val& a, const Val& b, Cmp op) const {
    const bool scalar = a.scalar && b.scalar;
    const size_t m = Rows(scalar);
    VP o = NewVal(VT::kBool, m, scalar);
    if (a.type == VT::kNull || b.type == VT::kNull) return o;
    uint8_t* ov = o->ov.data();
    uint8_t* ob = o->ob.data();
    auto rows = [&](auto x, auto y) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(x)>>;
      WithCmp<T>(op, [&](auto f) {
        WithScalars(a.scalar, b.scalar, [&](auto xs, auto ys) {
          CompareRows<decltype(xs)::value, decltype(ys)::value>(m, x, a.v, y, b.v, ob, ov, f);
        });
      });
    };
    switch (a.type) {
      case VT::kInt:
      case VT::kDatetime: rows(a.i, b.i); break;
      case VT::kFloat: rows(a.f, b.f); break;
      case VT::kBool: rows(a.b, b.b); break;
      case VT::kString:
        if (!a.scalar && b.scalar) {
          // Once per dictionary entry.
          if (!b.v[0]) return o;
          const std::string_view rhs = b.Str(0);
          return MapString<uint8_t>(a, VT::kBool, [&](std::string_view s, uint8_t* out) {
            *out = CmpApply(op, s, rhs);
            return true;
          });
        }
        if (a.scalar && !b.scalar) {
          if (!a.v[0]) return o;
          const std::string_view lhs = a.Str(0);
          return MapString<uint8_t>(b, VT::kBool, [&](std::string_view s, uint8_t* out) {
            *out = CmpApply(op, lhs, s);
            return true;
          });
        }
        Each2(a, b, m, [&](size_t r, size_t, size_t) { ov[r] = 1, ob[r] = CmpApply(op, a.Str(r), b.Str(r)); });
        break;
      case VT::kNull: break;
    }
    return o;
  }

  Result<VP> In(const ExprNode& n) {
    ASSIGN_OR_RETURN(VP x, Eval(n.args[0]));
    VT t = x->type;
    std::vector<VP> items;
    for (size_t i = 1; i < n.args.size(); ++i) {
      ASSIGN_OR_RETURN(VP it, Eval(n.args[i]));
      t = *Common(t, it->type);
      items.push_back(std::move(it));
    }
    x = Coerce(std::move(x), t);
    VP acc;
    for (VP& it : items) {
      it = Coerce(std::move(it), t);
      VP eq = Compare(*x, *it, Cmp::kEq);
      acc = acc ? Logic(*acc, *eq, false) : std::move(eq);
    }
    return n.negated ? Not(*acc) : std::move(acc);
  }

  Result<VP> Binary(const ExprNode& n, VP a, VP b, VT t) const {
    const std::string& op = n.name;
    if (op == "and" || op == "or") return Logic(*a, *b, op == "and");
    if (op == "||") return Concat(ToStringVal(std::move(a)), ToStringVal(std::move(b)));
    const bool scalar = a->scalar && b->scalar;
    const size_t m = Rows(scalar);
    if (op == "+" || op == "-" || op == "*" || op == "/" || op == "%") {
      if (a->type == VT::kNull || b->type == VT::kNull) return AllNull(t, scalar);
      VP o = NewVal(t, m, scalar);
      uint8_t* ov = o->ov.data();
      if (t == VT::kInt) {
        int64_t* out = o->oi.data();
        const int64_t* x = a->i;
        const int64_t* y = b->i;
        const char c = op[0];
        Each2(*a, *b, m, [&](size_t r, size_t p, size_t q) {
          int64_t z = 0;
          bool bad = false;
          switch (c) {
            case '+': bad = __builtin_add_overflow(x[p], y[q], &z); break;
            case '-': bad = __builtin_sub_overflow(x[p], y[q], &z); break;
            case '*': bad = __builtin_mul_overflow(x[p], y[q], &z); break;
            default:
              if (y[q] == 0) bad = true;
              else z = y[q] == -1 ? 0 : x[p] % y[q];
          }
          if (!bad) ov[r] = 1, out[r] = z;
        });
        return o;
      }
      double* out = o->of.data();
      const char c = op[0];
      const Val& A = *a;
      const Val& B = *b;
      if (c != '%') {
        auto rows = [&](auto x, auto y) {
          WithScalars(A.scalar, B.scalar, [&](auto xs, auto ys) {
            constexpr bool XS = decltype(xs)::value, YS = decltype(ys)::value;
            switch (c) {
              case '+': ArithRows<XS, YS>(m, x, A.v, y, B.v, out, ov, false, [](double p, double q) { return p + q; }); break;
              case '-': ArithRows<XS, YS>(m, x, A.v, y, B.v, out, ov, false, [](double p, double q) { return p - q; }); break;
              case '*': ArithRows<XS, YS>(m, x, A.v, y, B.v, out, ov, false, [](double p, double q) { return p * q; }); break;
              default: ArithRows<XS, YS>(m, x, A.v, y, B.v, out, ov, true, [](double p, double q) { return p / q; });
            }
          });
        };
        if (A.type == VT::kFloat && B.type == VT::kFloat) rows(A.f, B.f);
        else if (A.type == VT::kFloat) rows(A.f, B.i);
        else if (B.type == VT::kFloat) rows(A.i, B.f);
        else rows(A.i, B.i);
        return o;
      }
      if (A.type == VT::kFloat && B.type == VT::kFloat && c != '/' && c != '%') {
        const double* x = A.f;
        const double* y = B.f;
        Each2(A, B, m, [&](size_t r, size_t p, size_t q) {
          ov[r] = 1;
          out[r] = c == '+' ? x[p] + y[q] : c == '-' ? x[p] - y[q] : x[p] * y[q];
        });
        return o;
      }
      Each2(A, B, m, [&](size_t r, size_t p, size_t q) {
        const double x = A.type == VT::kInt ? static_cast<double>(A.i[p]) : A.f[p];
        const double y = B.type == VT::kInt ? static_cast<double>(B.i[q]) : B.f[q];
        switch (c) {
          case '+': out[r] = x + y; break;
          case '-': out[r] = x - y; break;
          case '*': out[r] = x * y; break;
          case '/':
            if (y == 0) return;
            out[r] = x / y;
            break;
          default:
            if (y == 0) return;
            out[r] = std::fmod(x, y);
        }
        ov[r] = 1;
      });
      return o;
    }
    // Comparison.
    VT common = *Common(a->type, b->type);
    a = Coerce(std::move(a), common);
    b = Coerce(std::move(b), common);
    return Compare(*a, *b, CmpFromName(op));
  }

  VP Concat(VP a, VP b) const {
    const bool scalar = a->scalar && b->scalar;
    const size_t m = Rows(scalar);
    if (!a->scalar && b->scalar) {
      if (!b->v[0]) return AllNull(VT::kString, false);
      const std::string rhs(b->Str(0));
      return MapStringToString(*a, [&](std::string_view s, std::string& out) {
        out.append(s).append(rhs);
        return true;
      });
    }
    if (a->scalar && !b->scalar) {
      if (!a->v[0]) return AllNull(VT::kString, false);
      const std::string lhs(a->Str(0));
      return MapStringToString(*b, [&](std::string_view s, std::string& out) {
        out.append(lhs).append(s);
        return true;
      });
    }
    StrOut out(m, scalar);
    std::string buf;
    Each2(*a, *b, m, [&](size_t r, size_t, size_t) {
      buf.assign(a->Str(r)).append(b->Str(r));
      out.Set(r, buf);
    });
    return out.Finish();
  }

  // Picks per row the value of one of `src` (all of type t), chosen by pick(r) (-1 = null).
  template <class F>
  VP Pick(VT t, const std::vector<const Val*>& src, bool scalar, F pick) const {
    const size_t m = Rows(scalar);
    if (t == VT::kString) {
      StrOut out(m, scalar);
      for (size_t r = 0; r < m; ++r) {
        const int k = pick(r);
        if (k >= 0) out.Set(r, src[static_cast<size_t>(k)]->Str(r));
      }
      return out.Finish();
    }
    VP o = NewVal(t, m, scalar);
    if (t == VT::kNull) return o;
    for (size_t r = 0; r < m; ++r) {
      const int k = pick(r);
      if (k < 0) continue;
      const Val& s = *src[static_cast<size_t>(k)];
      const size_t p = s.At(r);
      o->ov[r] = 1;
      switch (t) {
        case VT::kInt:
        case VT::kDatetime: o->oi[r] = s.i[p]; break;
        case VT::kFloat: o->of[r] = s.f[p]; break;
        case VT::kBool: o->ob[r] = s.b[p]; break;
        default: break;
      }
    }
    return o;
  }

  static int CompareAt(const Val& a, size_t r, const Val& b, size_t q) {
    switch (a.type) {
      case VT::kInt:
      case VT::kDatetime: return a.i[a.At(r)] < b.i[b.At(q)] ? -1 : a.i[a.At(r)] > b.i[b.At(q)] ? 1 : 0;
      case VT::kFloat: return a.f[a.At(r)] < b.f[b.At(q)] ? -1 : a.f[a.At(r)] > b.f[b.At(q)] ? 1 : 0;
      case VT::kBool: return static_cast<int>(a.b[a.At(r)]) - static_cast<int>(b.b[b.At(q)]);
      case VT::kString: {
        const int c = a.Str(r).compare(b.Str(q));
        return c < 0 ? -1 : c > 0 ? 1 : 0;
      }
      default: return 0;
    }
  }

  template <class F>
  VP MathUnary(const Val& a, F f) const {
    const size_t m = Rows(a.scalar);
    VP o = NewVal(VT::kFloat, m, a.scalar);
    if (a.type == VT::kNull) return o;
    for (size_t r = 0; r < m; ++r) {
      if (!a.v[r]) continue;
      double y = 0;
      if (f(a.Num(r), &y)) o->ov[r] = 1, o->of[r] = y;
    }
    return o;
  }

  template <class F>
  VP DatetimePart(const Val& a, F f) const {
    const size_t m = Rows(a.scalar);
    VP o = NewVal(VT::kInt, m, a.scalar);
    if (a.type == VT::kNull) return o;
    for (size_t r = 0; r < m; ++r) {
      if (!a.v[r]) continue;
      o->ov[r] = 1;
      o->oi[r] = f(a.i[r]);
    }
    return o;
  }

  Result<VP> Call(int32_t id, const ExprNode& n) {
    std::vector<VP> a;
    for (int32_t x : n.args) {
      ASSIGN_OR_RETURN(VP v, Eval(x));
      a.push_back(std::move(v));
    }
    const std::string& f = n.name;
    const VT t = T(id);
    bool all_scalar = true;
    for (const VP& v : a) all_scalar = all_scalar && v->scalar;
    const size_t m = Rows(all_scalar);

    if (f == "is_null") return IsNull(*a[0], false);
    if (f == "abs" || f == "floor" || f == "ceil") {
      if (a[0]->type == VT::kNull) return AllNull(t, a[0]->scalar);
      if (a[0]->type == VT::kInt) {
        if (f != "abs") return std::move(a[0]);
        VP o = NewVal(VT::kInt, Rows(a[0]->scalar), a[0]->scalar);
        for (size_t r = 0; r < o->ov.size(); ++r) {
          if (a[0]->v[r] && a[0]->i[r] != INT64_MIN) o->ov[r] = 1, o->oi[r] = a[0]->i[r] < 0 ? -a[0]->i[r] : a[0]->i[r];
        }
        return o;
      }
      return MathUnary(*a[0], [&](double x, double* y) {
        *y = f == "abs" ? std::fabs(x) : f == "floor" ? std::floor(x) : std::ceil(x);
        return true;
      });
    }
    if (f == "round") {
      if (t == VT::kInt) return std::move(a[0]);
      if (a[0]->type == VT::kNull) return AllNull(t, all_scalar);
      const Val& x = *a[0];
      const Val* digits = a.size() > 1 ? a[1].get() : nullptr;
      VP o = NewVal(VT::kFloat, m, all_scalar);
      for (size_t r = 0; r < m; ++r) {
        if (!x.Valid(r)) continue;
        int64_t nd = 0;
        if (digits != nullptr) {
          if (digits->type == VT::kNull || !digits->Valid(r)) continue;
          nd = std::clamp<int64_t>(digits->i[digits->At(r)], -30, 30);
        }
        const double v = x.Num(r);
        const double scale = std::pow(10.0, static_cast<double>(nd));
        const double scaled = v * scale;
        double y = std::isfinite(scaled) ? std::round(scaled) / scale : v;
        if (!std::isfinite(y)) y = v;
        o->ov[r] = 1;
        o->of[r] = y;
      }
      return o;
    }
    if (f == "log" || f == "log10" || f == "sqrt" || f == "exp") {
      const int which = f == "log" ? 0 : f == "log10" ? 1 : f == "sqrt" ? 2 : 3;
      return MathUnary(*a[0], [which](double x, double* y) {
        switch (which) {
          case 0:
            if (!(x > 0)) return false;
            *y = std::log(x);
            return true;
          case 1:
            if (!(x > 0)) return false;
            *y = std::log10(x);
            return true;
          case 2:
            if (!(x >= 0)) return false;
            *y = std::sqrt(x);
            return true;
          default: *y = std::exp(x); return true;
        }
      });
    }
    if (f == "pow") {
      VP o = NewVal(VT::kFloat, m, all_scalar);
      if (a[0]->type == VT::kNull || a[1]->type == VT::kNull) return o;
      Each2(*a[0], *a[1], m, [&](size_t r, size_t, size_t) {
        const double y = std::pow(a[0]->Num(r), a[1]->Num(r));
        if (!std::isnan(y)) o->ov[r] = 1, o->of[r] = y;
      });
      return o;
    }
    if (f == "min" || f == "max" || f == "coalesce" || f == "if") {
      const size_t first = f == "if" ? 1 : 0;
      std::vector<const Val*> src;
      for (size_t i = first; i < a.size(); ++i) {
        a[i] = Coerce(std::move(a[i]), t);
        src.push_back(a[i].get());
      }
      if (f == "coalesce") {
        return Pick(t, src, all_scalar, [&](size_t r) {
          for (size_t k = 0; k < src.size(); ++k) {
            if (src[k]->Valid(r)) return static_cast<int>(k);
          }
          return -1;
        });
      }
      if (f == "if") {
        const Val& cond = *a[0];
        const bool cn = cond.type == VT::kNull;
        return Pick(t, src, all_scalar, [&](size_t r) {
          const int k = (!cn && cond.Valid(r) && cond.b[cond.At(r)]) ? 0 : 1;
          return src[static_cast<size_t>(k)]->Valid(r) ? k : -1;
        });
      }
      const int want = f == "min" ? -1 : 1;
      return Pick(t, src, all_scalar, [&](size_t r) {
        int best = -1;
        for (size_t k = 0; k < src.size(); ++k) {
          if (!src[k]->Valid(r)) continue;
          if (best < 0 || CompareAt(*src[k], r, *src[static_cast<size_t>(best)], r) == want) best = static_cast<int>(k);
        }
        return best;
      });
    }
    // String functions: a null-typed first argument gives an all-null result.
    const bool string_fn = f == "lower" || f == "upper" || f == "trim" || f == "length" || f == "contains" ||
                           f == "starts_with" || f == "ends_with" || f == "replace" || f == "substr" ||
                           f == "regex_match";
    if (string_fn) {
      for (const VP& v : a) {
        if (v->type == VT::kNull) return AllNull(t, all_scalar);
      }
    }
    if (f == "lower" || f == "upper") {
      const bool up = f == "upper";
      return MapStringToString(*a[0], [up](std::string_view s, std::string& out) {
        out.assign(s);
        for (char& c : out) c = static_cast<char>(up ? std::toupper(static_cast<unsigned char>(c))
                                                     : std::tolower(static_cast<unsigned char>(c)));
        return true;
      });
    }
    if (f == "trim") {
      return MapStringToString(*a[0], [](std::string_view s, std::string& out) {
        out.assign(TrimSpace(s));
        return true;
      });
    }
    if (f == "length") {
      return MapString<int64_t>(*a[0], VT::kInt, [](std::string_view s, int64_t* out) {
        *out = static_cast<int64_t>(Utf8Length(s));
        return true;
      });
    }
    if (f == "contains" || f == "starts_with" || f == "ends_with") {
      const int which = f == "contains" ? 0 : f == "starts_with" ? 1 : 2;
      auto test = [which](std::string_view s, std::string_view p) -> uint8_t {
        if (which == 0) return s.find(p) != std::string_view::npos;
        if (which == 1) return s.substr(0, std::min(s.size(), p.size())) == p;
        return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
      };
      if (a[1]->scalar) {
        if (!a[1]->v[0]) return AllNull(t, all_scalar);
        const std::string p(a[1]->Str(0));
        return MapString<uint8_t>(*a[0], VT::kBool, [&](std::string_view s, uint8_t* out) {
          *out = test(s, p);
          return true;
        });
      }
      VP o = NewVal(VT::kBool, m, all_scalar);
      Each2(*a[0], *a[1], m, [&](size_t r, size_t, size_t) { o->ov[r] = 1, o->ob[r] = test(a[0]->Str(r), a[1]->Str(r)); });
      return o;
    }
    if (f == "replace") {
      auto rep = [](std::string_view s, std::string_view from, std::string_view to, std::string& out) {
        if (from.empty()) {
          out.assign(s);
          return;
        }
        size_t at = 0;
        while (true) {
          const size_t hit = s.find(from, at);
          if (hit == std::string_view::npos) break;
          out.append(s.substr(at, hit - at)).append(to);
          at = hit + from.size();
        }
        out.append(s.substr(at));
      };
      if (a[1]->scalar && a[2]->scalar) {
        if (!a[1]->v[0] || !a[2]->v[0]) return AllNull(t, all_scalar);
        const std::string from(a[1]->Str(0)), to(a[2]->Str(0));
        return MapStringToString(*a[0], [&](std::string_view s, std::string& out) {
          rep(s, from, to, out);
          return true;
        });
      }
      StrOut out(m, all_scalar);
      std::string buf;
      for (size_t r = 0; r < m; ++r) {
        if (!a[0]->Valid(r) || !a[1]->Valid(r) || !a[2]->Valid(r)) continue;
        buf.clear();
        rep(a[0]->Str(r), a[1]->Str(r), a[2]->Str(r), buf);
        out.Set(r, buf);
      }
      return out.Finish();
    }
    if (f == "substr") {
      auto sub = [](std::string_view s, int64_t start, std::optional<int64_t> len, std::string& out) {
        // 1-based start; start <= 0 counts as 1 (the characters before position 1 are consumed from len).
        int64_t from = start - 1;
        int64_t count = len ? *len : INT64_MAX;
        if (from < 0) {
          if (len) count = std::max<int64_t>(0, count + from);
          from = 0;
        }
        if (count <= 0) return;
        const size_t b = Utf8Offset(s, from);
        const size_t e = count >= INT64_MAX - from ? s.size() : Utf8Offset(s, from + count);
        out.assign(s.substr(b, e >= b ? e - b : 0));
      };
      const bool rest_scalar = a[1]->scalar && (a.size() < 3 || a[2]->scalar);
      if (rest_scalar && !a[0]->scalar) {
        if (!a[1]->v[0] || (a.size() > 2 && !a[2]->v[0])) return AllNull(t, false);
        const int64_t start = a[1]->i[0];
        std::optional<int64_t> len;
        if (a.size() > 2) len = a[2]->i[0];
        return MapStringToString(*a[0], [&](std::string_view s, std::string& out) {
          sub(s, start, len, out);
          return true;
        });
      }
      StrOut out(m, all_scalar);
      std::string buf;
      for (size_t r = 0; r < m; ++r) {
        if (!a[0]->Valid(r) || !a[1]->Valid(r) || (a.size() > 2 && !a[2]->Valid(r))) continue;
        buf.clear();
        std::optional<int64_t> len;
        if (a.size() > 2) len = a[2]->i[a[2]->At(r)];
        sub(a[0]->Str(r), a[1]->i[a[1]->At(r)], len, buf);
        out.Set(r, buf);
      }
      return out.Finish();
    }
    if (f == "regex_match") {
      const std::regex& re = *k_.regex[static_cast<size_t>(id)];
      return MapString<uint8_t>(*a[0], VT::kBool, [&](std::string_view s, uint8_t* out) {
        if (s.size() > kMaxRegexInputBytes) return false;
        try {
          *out = std::regex_match(s.begin(), s.end(), re);
        } catch (const std::regex_error&) {
          return false;
        }
        return true;
      });
    }
    if (f == "year" || f == "month" || f == "day") {
      const int which = f == "year" ? 0 : f == "month" ? 1 : 2;
      return DatetimePart(*a[0], [which](int64_t us) -> int64_t {
        int64_t y = 0;
        unsigned mo = 0, d = 0;
        CivilFromDays(FloorDiv(us, kMicrosPerDay), &y, &mo, &d);
        return which == 0 ? y : which == 1 ? mo : d;
      });
    }
    if (f == "hour") {
      return DatetimePart(*a[0], [](int64_t us) -> int64_t {
        return FloorDiv(us - FloorDiv(us, kMicrosPerDay) * kMicrosPerDay, 3600LL * 1000000LL);
      });
    }
    if (f == "weekday") {
      // 1970-01-01 was a Thursday (3 with Monday = 0).
      return DatetimePart(*a[0], [](int64_t us) -> int64_t {
        const int64_t d = FloorDiv(us, kMicrosPerDay);
        return ((d % 7) + 7 + 3) % 7;
      });
    }
    if (f == "days_between") {
      VP o = NewVal(VT::kInt, m, all_scalar);
      if (a[0]->type == VT::kNull || a[1]->type == VT::kNull) return o;
      Each2(*a[0], *a[1], m, [&](size_t r, size_t p, size_t q) {
        int64_t diff = 0;
        if (!__builtin_sub_overflow(a[1]->i[q], a[0]->i[p], &diff)) o->ov[r] = 1, o->oi[r] = diff / kMicrosPerDay;
      });
      return o;
    }
    if (f == "date") {
      if (a[0]->type == VT::kDatetime) return std::move(a[0]);
      if (a[0]->type == VT::kNull) return AllNull(VT::kDatetime, a[0]->scalar);
      return MapString<int64_t>(*a[0], VT::kDatetime,
                                [](std::string_view s, int64_t* out) { return ParseDatetimeMicros(TrimBlanks(s), out); });
    }
    if (f == "to_string") return ToStringVal(std::move(a[0]));
    if (f == "to_int" || f == "to_float") {
      const bool to_int = f == "to_int";
      Val& x = *a[0];
      if (x.type == VT::kNull) return AllNull(t, x.scalar);
      if (x.type == VT::kString) {
        if (to_int) {
          return MapString<int64_t>(x, VT::kInt, [](std::string_view s, int64_t* out) {
            const std::string_view v = TrimBlanks(s);
            if (ParseInt64(v, out) == IntParse::kOk) return true;
            double d = 0;
            return ParseFloat64(v, &d) && DoubleToInt(d, out);
          });
        }
        return MapString<double>(x, VT::kFloat,
                                 [](std::string_view s, double* out) { return ParseFloat64(TrimBlanks(s), out); });
      }
      const size_t mm = Rows(x.scalar);
      VP o = NewVal(t, mm, x.scalar);
      for (size_t r = 0; r < mm; ++r) {
        if (!x.v[r]) continue;
        if (to_int) {
          int64_t y = 0;
          bool ok = true;
          switch (x.type) {
            case VT::kInt: y = x.i[r]; break;
            case VT::kFloat: ok = DoubleToInt(x.f[r], &y); break;
            case VT::kBool: y = x.b[r]; break;
            case VT::kDatetime: y = FloorDiv(x.i[r], 1000000); break;
            default: ok = false;
          }
          if (ok) o->ov[r] = 1, o->oi[r] = y;
        } else {
          double y = 0;
          switch (x.type) {
            case VT::kInt: y = static_cast<double>(x.i[r]); break;
            case VT::kFloat: y = x.f[r]; break;
            case VT::kBool: y = x.b[r]; break;
            case VT::kDatetime: y = static_cast<double>(x.i[r]) / 1e6; break;
            default: break;
          }
          o->ov[r] = 1;
          o->of[r] = y;
        }
      }
      return o;
    }
    return Status::Internal("function without an implementation: " + f);
  }

  const Expr& e_;
  const Table& t_;
  Checked k_;
  size_t n_;
};

}  // namespace

Result<Column> EvalExpr(const Expr& e, const Table& t) {
  RETURN_IF_ERROR(ValidateTable(t));
  Checker c(e, t);
  ASSIGN_OR_RETURN(Checked k, c.Run());
  Evaluator ev(e, t, std::move(k));
  return ev.Run();
}

Status ValidateSafeRegex(std::string_view pattern) {
  if (pattern.size() > kMaxRegexPatternBytes) {
    return Status::InvalidArgument("regex pattern is longer than " + std::to_string(kMaxRegexPatternBytes) + " bytes");
  }
  if (auto why = UnsafeRegex(pattern)) return Status::InvalidArgument("regex pattern refused: " + *why);
  try {
    std::regex re(pattern.begin(), pattern.end(), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return Status::InvalidArgument(std::string("invalid regex pattern: ") + e.what());
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> EvalPredicate(const Expr& predicate, const Table& t) {
  RETURN_IF_ERROR(ValidateTable(t));
  Checker c(predicate, t);
  ASSIGN_OR_RETURN(Checked k, c.Run());
  const VT root = k.type[static_cast<size_t>(predicate.root())];
  if (root != VT::kBool && root != VT::kNull) {
    return PosError(predicate.nodes()[static_cast<size_t>(predicate.root())].pos,
                    std::string("a filter must be a boolean expression, got ") + VTName(root));
  }
  Evaluator ev(predicate, t, std::move(k));
  return ev.Mask();
}

Result<Table> FilterRows(const Table& t, const Expr& predicate) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> keep, EvalPredicate(predicate, t));
  return SelectRows(t, keep);
}

}  // namespace lathe
