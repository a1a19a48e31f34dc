#include "data/typed_builder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/json.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int MonthDays(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Reads between min_digits and max_digits digits at s[*pos].
bool ReadNumber(std::string_view s, size_t* pos, size_t min_digits, size_t max_digits, int* out) {
  size_t i = *pos, n = 0;
  int v = 0;
  while (i < s.size() && n < max_digits && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i] - '0'), ++i, ++n;
  if (n < min_digits) return false;
  *pos = i;
  *out = v;
  return true;
}

bool ReadMonthName(std::string_view s, size_t* pos, int* month) {
  static const char* kNames[] = {"january", "february", "march",     "april",   "may",      "june",
                                 "july",    "august",   "september", "october", "november", "december"};
  for (int m = 0; m < 12; ++m) {
    std::string_view full = kNames[m];
    // Full name first, then the three-letter abbreviation (plus "sept").
    for (size_t len : {full.size(), size_t{4}, size_t{3}}) {
      if (len > full.size() || (len == 4 && m != 8)) continue;
      if (*pos + len > s.size()) continue;
      bool eq = true;
      for (size_t k = 0; k < len && eq; ++k) eq = LowerAscii(s[*pos + k]) == full[k];
      if (eq) {
        *pos += len;
        *month = m + 1;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

bool ParseDateWithFormat(std::string_view format, std::string_view s, int64_t* micros) {
  int year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t frac = 0;
  size_t p = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c != '%') {
      if (p >= s.size() || s[p] != c) return false;
      ++p;
      continue;
    }
    if (++i >= format.size()) return false;
    switch (format[i]) {
      case 'Y':
        if (!ReadNumber(s, &p, 4, 4, &year)) return false;
        break;
      case 'y': {
        int yy;
        if (!ReadNumber(s, &p, 2, 2, &yy)) return false;
        year = yy >= 69 ? 1900 + yy : 2000 + yy;
        break;
      }
      case 'm':
        if (!ReadNumber(s, &p, 1, 2, &month)) return false;
        break;
      case 'd':
        if (!ReadNumber(s, &p, 1, 2, &day)) return false;
        break;
      case 'H':
        if (!ReadNumber(s, &p, 1, 2, &hour)) return false;
        break;
      case 'M':
        if (!ReadNumber(s, &p, 1, 2, &minute)) return false;
        break;
      case 'S':
        if (!ReadNumber(s, &p, 1, 2, &second)) return false;
        break;
      case 'b':
        if (!ReadMonthName(s, &p, &month)) return false;
        break;
      case 'f': {
        size_t n = 0;
        int64_t scale = 100000;
        frac = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (n < 6) frac += (s[p] - '0') * scale, scale /= 10;
          ++p, ++n;
        }
        if (n == 0 || n > 9) return false;
        break;
      }
      case '%':
        if (p >= s.size() || s[p] != '%') return false;
        ++p;
        break;
      default:
        return false;
    }
  }
  if (p != s.size()) return false;
  if (month < 1 || month > 12 || day < 1 || day > MonthDays(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  *micros = days * 86400000000LL + (hour * 3600LL + minute * 60LL + second) * 1000000LL + frac;
  return true;
}

Status ValidateDateFormat(const std::string& column, const std::string& format) {
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') continue;
    char d = i + 1 < format.size() ? format[i + 1] : '\0';
    if (std::strchr("YymdHMSbf%", d) == nullptr || d == '\0') {
      std::string problem = "uses an unsupported directive (supported: %Y %y %m %d %H %M %S %b %f %%)";
      return Status::InvalidArgument("schema hint hints.date_formats." + column + " " + problem)
          .WithDetail(ErrorDetail::Field("hints.date_formats." + column, problem));
    }
    ++i;
  }
  return Status::Ok();
}

void ColumnTypeTracker::Observe(const CellValue& v) {
  switch (v.kind) {
    case CellKind::kMissing: return;
    case CellKind::kInt: flags_ |= kSawInt; return;
    case CellKind::kFloat: flags_ |= kSawFloat; return;
    case CellKind::kBool: flags_ |= kSawBool; return;
    case CellKind::kDatetime: flags_ |= kSawDatetime; return;
    case CellKind::kText: flags_ |= kSawText; return;
    case CellKind::kString: {
      flags_ |= kSawString;
      if (!(flags_ & kSawNonDateString)) {
        int64_t micros;
        if (!ParseDatetimeMicros(TrimBlanks(v.text), &micros)) flags_ |= kSawNonDateString;
      }
      return;
    }
  }
}

ColumnType ColumnTypeTracker::Resolve() const {
  const uint16_t f = flags_;
  if (f == 0 || (f & kSawText)) return ColumnType::kString;
  if (f == kSawInt) return ColumnType::kInt64;
  if ((f & ~(kSawInt | kSawFloat)) == 0) return ColumnType::kFloat64;
  if (f == kSawBool) return ColumnType::kBool;
  if ((f & ~(kSawString | kSawDatetime)) == 0) return ColumnType::kDatetime;  // no kSawNonDateString
  return ColumnType::kString;
}

std::string FormatDouble(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

CellConverter::CellConverter(const SchemaHints& hints) : tokens_(hints.missing_tokens) {
  custom_ = !tokens_.empty();
}

bool CellConverter::IsMissingText(std::string_view s) const {
  std::string_view t = TrimBlanks(s);
  if (t.empty()) return true;
  if (!custom_) return IsMissingToken(t);
  for (const auto& tok : tokens_) {
    if (t == tok) return true;
  }
  return false;
}

bool CellConverter::Convert(const CellValue& v, const ColumnSpec& spec, ConvertedCell* out, std::string* reason) {
  out->valid = true;
  if (v.kind == CellKind::kMissing) {
    out->valid = false;
    return true;
  }
  auto fail = [&](const char* what) {
    *reason = std::string("expected ") + what;
    return false;
  };
  switch (spec.type) {
    case ColumnType::kString:
      switch (v.kind) {
        case CellKind::kString:
        case CellKind::kText: out->s = v.text; return true;
        case CellKind::kInt:
          if (v.text.empty()) {
            scratch_ = std::to_string(v.i);
            out->s = scratch_;
          } else {
            out->s = v.text;
          }
          return true;
        case CellKind::kFloat:
          if (v.text.empty()) {
            scratch_ = FormatDouble(v.f);
            out->s = scratch_;
          } else {
            out->s = v.text;
          }
          return true;
        case CellKind::kBool: out->s = v.i ? "true" : "false"; return true;
        case CellKind::kDatetime:
          scratch_ = FormatDatetimeMicros(v.i);
          out->s = scratch_;
          return true;
        case CellKind::kMissing: break;
      }
      return true;
    case ColumnType::kInt64:
      if (v.kind == CellKind::kInt) {
        out->i = v.i;
        return true;
      }
      if (spec.forced) {
        if (v.kind == CellKind::kFloat && std::trunc(v.f) == v.f && v.f >= -9.2233720368547758e18 &&
            v.f < 9.2233720368547758e18) {
          out->i = static_cast<int64_t>(v.f);
          return true;
        }
        if (v.kind == CellKind::kString && ParseInt64(TrimBlanks(v.text), &out->i) == IntParse::kOk) return true;
      }
      return fail("an integer");
    case ColumnType::kFloat64:
      if (v.kind == CellKind::kFloat) {
        out->f = v.f;
        return true;
      }
      if (v.kind == CellKind::kInt) {
        out->f = static_cast<double>(v.i);
        return true;
      }
      if (spec.forced && v.kind == CellKind::kString && ParseFloat64(TrimBlanks(v.text), &out->f)) return true;
      return fail("a number");
    case ColumnType::kBool:
      if (v.kind == CellKind::kBool) {
        out->i = v.i;
        return true;
      }
      if (spec.forced) {
        bool b;
        if (v.kind == CellKind::kString && ParseBool(TrimBlanks(v.text), &b)) {
          out->i = b ? 1 : 0;
          return true;
        }
        if (v.kind == CellKind::kInt && (v.i == 0 || v.i == 1)) {
          out->i = v.i;
          return true;
        }
      }
      return fail("a boolean");
    case ColumnType::kDatetime:
      if (v.kind == CellKind::kDatetime && spec.date_format == nullptr) {
        out->i = v.i;
        return true;
      }
      if (v.kind == CellKind::kString) {
        std::string_view t = TrimBlanks(v.text);
        if (spec.date_format != nullptr) {
          if (ParseDateWithFormat(*spec.date_format, t, &out->i)) return true;
          *reason = "does not match the date format " + *spec.date_format;
          return false;
        }
        if (ParseDatetimeMicros(t, &out->i)) return true;
      }
      if (v.kind == CellKind::kDatetime) {  // a native date under a format hint: the format does not apply
        out->i = v.i;
        return true;
      }
      return fail("a date or datetime");
  }
  return fail("a value");
}

std::optional<ColumnSpec> HintedSpec(const std::string& name, const SchemaHints& hints) {
  auto f = hints.date_formats.find(name);
  if (f != hints.date_formats.end()) return ColumnSpec{ColumnType::kDatetime, true, &f->second};
  auto t = hints.types.find(name);
  if (t != hints.types.end()) return ColumnSpec{t->second, true, nullptr};
  return std::nullopt;
}

Result<std::vector<ColumnSpec>> BuildColumnSpecs(const std::vector<std::string>& names,
                                                 const std::vector<ColumnType>& inferred, const SchemaHints& hints) {
  auto unknown = [&](const std::string& kind, const std::string& col) {
    std::string field = "hints." + kind + "." + col;
    return Status::InvalidArgument("schema hint " + field + " names a column the input does not have")
        .WithDetail(ErrorDetail::Field(field, "no such column"));
  };
  for (const auto& [col, type] : hints.types) {
    if (std::find(names.begin(), names.end(), col) == names.end()) return unknown("types", col);
    auto f = hints.date_formats.find(col);
    if (f != hints.date_formats.end() && type != ColumnType::kDatetime) {
      std::string field = "hints.types." + col;
      return Status::InvalidArgument("schema hint " + field + " conflicts with its date format")
          .WithDetail(ErrorDetail::Field(field, "a column with a date format is a datetime column"));
    }
  }
  for (const auto& [col, fmt] : hints.date_formats) {
    if (std::find(names.begin(), names.end(), col) == names.end()) return unknown("date_formats", col);
  }
  std::vector<ColumnSpec> specs(names.size());
  for (size_t c = 0; c < names.size(); ++c) {
    auto h = HintedSpec(names[c], hints);
    specs[c] = h ? *h : ColumnSpec{inferred[c], false, nullptr};
  }
  return specs;
}

// ---------------------------------------------------------------------------------------------------------

Status CheckBadRowOptions(const ImportOptions& options) {
  if (options.bad_rows == BadRowPolicy::kQuarantine && options.quarantine_path.empty()) {
    return Status::InvalidArgument("bad_rows=quarantine needs a quarantine_path")
        .WithDetail(ErrorDetail::Field("quarantine_path", "required for bad_rows=quarantine"));
  }
  if (options.max_bad_rows < 0) {
    return Status::InvalidArgument("max_bad_rows must not be negative")
        .WithDetail(ErrorDetail::Field("max_bad_rows", "must not be negative"));
  }
  return Status::Ok();
}

BadRowSink::BadRowSink(const ImportOptions& options, std::string unit) : options_(options), unit_(std::move(unit)) {}

BadRowSink::~BadRowSink() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status BadRowSink::RowError(int64_t line, const std::string& column, const std::string& reason) const {
  std::string msg = unit_ + " " + std::to_string(line) + ": ";
  if (!column.empty()) msg += "column \"" + column + "\": ";
  msg += reason;
  ErrorDetail d = column.empty() ? ErrorDetail::Line(line, reason) : ErrorDetail::Cell(line, column, reason);
  return Status::InvalidArgument(msg).WithDetail(std::move(d));
}

Status BadRowSink::Report(int64_t line, const std::string& column, const std::string& reason, std::string_view raw) {
  if (options_.bad_rows == BadRowPolicy::kFail) return RowError(line, column, reason);
  ++count_;
  if (count_ > options_.max_bad_rows) {
    Status st = RowError(line, column, reason);
    return Status::InvalidArgument("more than " + std::to_string(options_.max_bad_rows) +
                                   " bad rows (max_bad_rows); the last: " + st.message())
        .WithDetail(st.details().front());
  }
  if (options_.bad_rows != BadRowPolicy::kQuarantine) return Status::Ok();
  if (fd_ < 0) {
    std::string tmpl = options_.quarantine_path + ".tmp-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    fd_ = ::mkstemp(buf.data());
    if (fd_ < 0) return Status::Internal("cannot create the quarantine file next to " + options_.quarantine_path);
    temp_path_ = buf.data();
  }
  constexpr size_t kMaxRaw = 64 << 10;
  if (raw.size() > kMaxRaw) {
    size_t cut = kMaxRaw;
    while (cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 sequences
    raw = raw.substr(0, cut);
  }
  Json j = Json::object();
  j["line"] = line;
  j["reason"] = column.empty() ? reason : "column \"" + column + "\": " + reason;
  j["raw"] = std::string(raw);
  pending_ += DumpJson(j);
  pending_ += '\n';
  if (pending_.size() > (1 << 20)) return Flush();
  return Status::Ok();
}

Status BadRowSink::Flush() {
  size_t off = 0;
  while (off < pending_.size()) {
    ssize_t w = ::write(fd_, pending_.data() + off, pending_.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Internal("writing the quarantine file: " + std::string(std::strerror(errno)));
    }
    off += static_cast<size_t>(w);
  }
  pending_.clear();
  return Status::Ok();
}

Status BadRowSink::Commit() {
  if (fd_ < 0) return Status::Ok();
  RETURN_IF_ERROR(Flush());
  if (::fsync(fd_) != 0) return Status::Internal("fsync of the quarantine file failed");
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), options_.quarantine_path.c_str()) != 0) {
    return Status::Internal("cannot rename the quarantine file into place: " + std::string(std::strerror(errno)));
  }
  committed_ = true;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------------------

size_t RowsPerGroup(size_t ncols) {
  return static_cast<size_t>(
      std::clamp<int64_t>(static_cast<int64_t>((size_t{8} << 20) / std::max<size_t>(ncols, 1)), 1, kLcolRowsPerGroup));
}

int32_t RowGroupWriter::Dict::Insert(std::string_view s) {
  auto it = index.find(s);
  if (it != index.end()) return it->second;
  owned.emplace_back(s);
  std::string_view v = owned.back();
  int32_t code = static_cast<int32_t>(values.size());
  values.push_back(v);
  index.emplace(v, code);
  return code;
}

Result<std::unique_ptr<RowGroupWriter>> RowGroupWriter::Create(const std::string& output_path,
                                                               const std::vector<std::string>& names,
                                                               const std::vector<ColumnType>& types, int zstd_level) {
  std::unique_ptr<RowGroupWriter> w(new RowGroupWriter());
  ASSIGN_OR_RETURN(w->writer_, DatasetWriter::Create(output_path, names));
  w->types_ = types;
  w->zstd_level_ = zstd_level;
  w->group_rows_ = RowsPerGroup(names.size());
  w->cols_.resize(names.size());
  for (size_t c = 0; c < names.size(); ++c) {
    ColumnBuffer& b = w->cols_[c];
    b.type = types[c];
    b.valid.assign(w->group_rows_, 0);
    switch (b.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: b.i64.assign(w->group_rows_, 0); break;
      case ColumnType::kFloat64: b.f64.assign(w->group_rows_, 0); break;
      case ColumnType::kBool: b.b.assign(w->group_rows_, 0); break;
      case ColumnType::kString: b.codes.assign(w->group_rows_, 0); break;
    }
  }
  return w;
}

Status RowGroupWriter::StartRow() {
  if (in_group_ == group_rows_) RETURN_IF_ERROR(FlushGroup());
  ++in_group_;
  ++rows_;
  return Status::Ok();
}

void RowGroupWriter::Set(size_t column, const ConvertedCell& cell) {
  if (!cell.valid || in_group_ == 0) return;
  size_t r = in_group_ - 1;
  ColumnBuffer& b = cols_[column];
  b.valid[r] = 1;
  switch (b.type) {
    case ColumnType::kInt64:
    case ColumnType::kDatetime: b.i64[r] = cell.i; break;
    case ColumnType::kFloat64: b.f64[r] = cell.f; break;
    case ColumnType::kBool: b.b[r] = cell.i != 0; break;
    case ColumnType::kString: b.codes[r] = b.dict.Insert(cell.s); break;
  }
}

Status RowGroupWriter::FlushGroup() {
  if (in_group_ == 0) return Status::Ok();
  std::vector<EncodedChunk> chunks;
  chunks.reserve(cols_.size());
  for (ColumnBuffer& b : cols_) {
    ChunkInput in;
    in.type = b.type;
    in.rows = in_group_;
    in.valid = b.valid.data();
    in.i64 = b.i64.data();
    in.f64 = b.f64.data();
    in.b = b.b.data();
    in.codes = b.codes.data();
    in.dict = b.dict.values.data();
    in.dict_size = b.dict.values.size();
    chunks.push_back(EncodeChunk(in, zstd_level_));
    std::fill_n(b.valid.begin(), in_group_, 0);
    if (!b.i64.empty()) std::fill_n(b.i64.begin(), in_group_, 0);
    if (!b.f64.empty()) std::fill_n(b.f64.begin(), in_group_, 0.0);
    if (!b.b.empty()) std::fill_n(b.b.begin(), in_group_, 0);
    if (!b.codes.empty()) std::fill_n(b.codes.begin(), in_group_, 0);
    b.dict.Clear();
  }
  RETURN_IF_ERROR(writer_->AppendRowGroup(static_cast<int64_t>(in_group_), chunks));
  in_group_ = 0;
  return Status::Ok();
}

Result<int64_t> RowGroupWriter::Finish() {
  RETURN_IF_ERROR(FlushGroup());
  return writer_->Finish(types_);
}

}  // namespace lathe
