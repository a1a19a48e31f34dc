#include "cli/table_printer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace lathe::cli {

namespace {

bool IsContinuationByte(unsigned char c) { return (c & 0xC0) == 0x80; }

// A cell counts as numeric if strtod consumes all of it (after an optional sign) and it is not empty.
bool LooksNumeric(const std::string& s) {
  if (s.empty()) return false;
  if (s == "nan" || s == "inf" || s == "-inf") return true;
  const char* begin = s.c_str();
  char* end = nullptr;
  std::strtod(begin, &end);
  if (end != begin + s.size()) return false;
  // strtod also accepts "infinity", hex and leading spaces; only plain decimal forms count.
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) return false;
  }
  return true;
}

void AppendPadded(std::string& out, const std::string& cell, size_t width, bool right) {
  size_t w = DisplayWidth(cell);
  size_t pad = width > w ? width - w : 0;
  if (right) out.append(pad, ' ');
  out += cell;
  if (!right) out.append(pad, ' ');
}

}  // namespace

size_t DisplayWidth(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) {
    if (!IsContinuationByte(c)) ++n;
  }
  return n;
}

std::string SanitizeCell(const std::string& text, size_t max_width) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (max_width == 0 || DisplayWidth(out) <= max_width) return out;
  // Keep max_width - 1 code points, then the ellipsis.
  size_t kept = 0, i = 0;
  for (; i < out.size(); ++i) {
    if (!IsContinuationByte(static_cast<unsigned char>(out[i]))) {
      if (kept == max_width - 1) break;
      ++kept;
    }
  }
  out.resize(i);
  out += "\xE2\x80\xA6";  // …
  return out;
}

std::string FormatSignificant(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (digits < 1) digits = 1;
  if (digits > 17) digits = 17;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, value);
  std::string s = buf;
  if (s == "-0") s = "0";
  return s;
}

std::string FormatCell(const Json& value, int float_digits) {
  switch (value.type()) {
    case Json::value_t::null: return "";
    case Json::value_t::string: return value.get_ref<const std::string&>();
    case Json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer: return std::to_string(value.get<int64_t>());
    case Json::value_t::number_unsigned: return std::to_string(value.get<uint64_t>());
    case Json::value_t::number_float: return FormatSignificant(value.get<double>(), float_digits);
    default: return DumpJson(value);
  }
}

TablePrinter::TablePrinter(std::vector<std::string> headers, size_t max_cell_width)
    : headers_(std::move(headers)), max_cell_width_(max_cell_width) {
  for (auto& h : headers_) h = SanitizeCell(h, max_cell_width_);
}

void TablePrinter::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  for (auto& c : cells) c = SanitizeCell(c, max_cell_width_);
  rows_.push_back(std::move(cells));
}

std::string TablePrinter::Render() const {
  const size_t n = headers_.size();
  std::vector<size_t> width(n, 0);
  std::vector<bool> numeric(n, true);
  std::vector<bool> any_value(n, false);
  for (size_t c = 0; c < n; ++c) width[c] = DisplayWidth(headers_[c]);
  for (const auto& row : rows_) {
    for (size_t c = 0; c < n; ++c) {
      width[c] = std::max(width[c], DisplayWidth(row[c]));
      if (row[c].empty()) continue;
      any_value[c] = true;
      if (!LooksNumeric(row[c])) numeric[c] = false;
    }
  }
  auto render_line = [&](const std::vector<std::string>& cells, bool header) {
    std::string line;
    for (size_t c = 0; c < n; ++c) {
      if (c > 0) line += "  ";
      bool right = !header && numeric[c] && any_value[c];
      if (header && numeric[c] && any_value[c]) right = true;
      // The last column is not padded on the right.
      AppendPadded(line, cells[c], (c + 1 == n && !right) ? 0 : width[c], right);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    line += '\n';
    return line;
  };
  std::string out = render_line(headers_, true);
  for (const auto& row : rows_) out += render_line(row, false);
  return out;
}

}  // namespace lathe::cli
