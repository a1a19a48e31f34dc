#include "data/export.h"
#include "data/table_ops.h"

#include <charconv>
#include <cmath>

#include "data/lcol_format.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

void AppendCsvField(std::string* out, std::string_view s) {
  bool quote = !s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t');
  if (!quote) {
    for (char c : s) {
      if (c == ',' || c == '"' || c == '\n' || c == '\r') {
        quote = true;
        break;
      }
    }
  }
  if (!quote) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

// Appends `s` as a JSON string literal, replacing invalid UTF-8 with U+FFFD.
void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out->push_back('\\');
        out->push_back(static_cast<char>(c));
      } else if (c < 0x20) {
        switch (c) {
          case '\n': out->append("\\n"); break;
          case '\r': out->append("\\r"); break;
          case '\t': out->append("\\t"); break;
          case '\b': out->append("\\b"); break;
          case '\f': out->append("\\f"); break;
          default:
            out->append("\\u00");
            out->push_back(kHex[c >> 4]);
            out->push_back(kHex[c & 15]);
        }
      } else {
        out->push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    // Multi-byte sequence: validate length, continuation bytes, overlongs, surrogates and the upper bound.
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {
      if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        ok = false;
      }
    }
    if (ok) {
      out->append(s.substr(i, len));
      i += len;
    } else {
      out->append("\xEF\xBF\xBD");
      ++i;
    }
  }
  out->push_back('"');
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// Shortest round-trip text of a finite double.
void AppendDouble(std::string* out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

class Writer {
 public:
  Writer(const std::vector<std::string>& names, ExportFormat format, const ExportSink& sink)
      : format_(format), sink_(sink) {
    for (const std::string& n : names) {
      std::string k;
      AppendJsonString(&k, n);
      k.push_back(':');
      json_keys_.push_back(std::move(k));
    }
    if (format_ == ExportFormat::kCsv) {
      for (size_t c = 0; c < names.size(); ++c) {
        if (c > 0) buf_.push_back(',');
        AppendCsvField(&buf_, names[c]);
      }
      buf_.push_back('\n');
    }
  }

  Status Rows(const Table& t, size_t lo, size_t hi) {
    if (t.columns.size() != json_keys_.size()) return Status::Internal("export: table has the wrong column count");
    for (size_t r = lo; r < hi; ++r) {
      if (format_ == ExportFormat::kCsv) {
        for (size_t c = 0; c < t.columns.size(); ++c) {
          if (c > 0) buf_.push_back(',');
          CsvValue(t.columns[c], r);
        }
      } else {
        buf_.push_back('{');
        for (size_t c = 0; c < t.columns.size(); ++c) {
          if (c > 0) buf_.push_back(',');
          buf_.append(json_keys_[c]);
          JsonValue(t.columns[c], r);
        }
        buf_.push_back('}');
      }
      buf_.push_back('\n');
      if (buf_.size() >= kChunkBytes) RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  Status Flush() {
    if (buf_.empty()) return Status::Ok();
    Status s = sink_(buf_);
    buf_.clear();
    return s;
  }

 private:
  void CsvValue(const Column& c, size_t r) {
    if (!c.valid[r]) return;
    switch (c.type) {
      case ColumnType::kInt64: AppendInt(&buf_, c.i64[r]); break;
      case ColumnType::kDatetime: buf_.append(FormatDatetimeMicros(c.i64[r])); break;
      case ColumnType::kBool: buf_.append(c.b[r] ? "true" : "false"); break;
      case ColumnType::kFloat64: {
        double v = c.f64[r];
        if (std::isnan(v)) {
          buf_.append("NaN");
        } else if (std::isinf(v)) {
          buf_.append(v > 0 ? "inf" : "-inf");
        } else {
          AppendDouble(&buf_, v);
        }
        break;
      }
      case ColumnType::kString: AppendCsvField(&buf_, c.StringAt(r)); break;
    }
  }
  void JsonValue(const Column& c, size_t r) {
    if (!c.valid[r]) {
      buf_.append("null");
      return;
    }
    switch (c.type) {
      case ColumnType::kInt64: AppendInt(&buf_, c.i64[r]); break;
      case ColumnType::kDatetime: AppendJsonString(&buf_, FormatDatetimeMicros(c.i64[r])); break;
      case ColumnType::kBool: buf_.append(c.b[r] ? "true" : "false"); break;
      case ColumnType::kFloat64:
        if (std::isfinite(c.f64[r])) {
          AppendDouble(&buf_, c.f64[r]);
        } else {
          buf_.append("null");
        }
        break;
      case ColumnType::kString: AppendJsonString(&buf_, c.StringAt(r)); break;
    }
  }

  ExportFormat format_;
  const ExportSink& sink_;
  std::vector<std::string> json_keys_;
  std::string buf_;
};


}  // namespace

const char* ExportFormatName(ExportFormat f) { return f == ExportFormat::kCsv ? "csv" : "jsonl"; }

const char* ExportContentType(ExportFormat f) {
  return f == ExportFormat::kCsv ? "text/csv; charset=utf-8" : "application/x-ndjson";
}

Result<ExportFormat> ParseExportFormat(std::string_view name) {
  if (name == "csv") return ExportFormat::kCsv;
  if (name == "jsonl" || name == "ndjson") return ExportFormat::kJsonl;
  return Status(StatusCode::kInvalidArgument, "unknown export format '" + std::string(name) + "'; expected csv or jsonl")
      .WithDetail(ErrorDetail::Field("format", "expected csv or jsonl"));
}

Status ExportTable(const Table& t, ExportFormat format, const ExportSink& sink) {
  RETURN_IF_ERROR(ValidateTable(t));
  std::vector<std::string> names;
  for (const Column& c : t.columns) names.push_back(c.name);
  Writer w(names, format, sink);
  RETURN_IF_ERROR(w.Rows(t, 0, static_cast<size_t>(t.num_rows)));
  return w.Flush();
}

Status ExportDataset(const DatasetFile& f, ExportFormat format, const ExportSink& sink,
                     const std::function<bool()>& cancel) {
  std::vector<std::string> names;
  for (const ColumnInfo& c : f.columns()) names.push_back(c.name);
  Writer w(names, format, sink);
  for (int64_t first = 0; first < f.num_rows(); first += kLcolRowsPerGroup) {
    if (cancel && cancel()) return Status::Cancelled("export was cancelled");
    ASSIGN_OR_RETURN(Table part, f.ReadRows(first, kLcolRowsPerGroup));
    RETURN_IF_ERROR(w.Rows(part, 0, static_cast<size_t>(part.num_rows)));
  }
  return w.Flush();
}

}  // namespace lathe
