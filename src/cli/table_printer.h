// Human-readable output for the `lathe` client commands: aligned text tables and number formatting.
//
// Guarantees: every cell is made safe for a terminal (control characters such as ESC, CR, LF and TAB are
// replaced, so a hostile server cannot inject escape sequences), cells wider than the column limit are cut
// with "…", widths count UTF-8 code points, and columns whose every non-empty cell is a number are
// right-aligned. Not thread-safe; a TablePrinter is built and rendered by one thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/json.h"

namespace lathe::cli {

class TablePrinter {
 public:
  // Cells longer than max_cell_width code points are truncated with "…" (0 = no limit).
  explicit TablePrinter(std::vector<std::string> headers, size_t max_cell_width = 60);

  // Adds one row; missing trailing cells are blank, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // Two spaces between columns, header row first, no trailing spaces, one '\n' per line.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
  size_t max_cell_width_;
};

// Formats `value` with `digits` significant digits, dropping trailing zeros: 0.912345 -> "0.9123",
// 1234567 -> "1.235e+06", 12 -> "12". NaN and infinities print as "nan", "inf", "-inf".
std::string FormatSignificant(double value, int digits = 4);

// One JSON value as a table cell: strings as-is, integers exactly, other numbers with `float_digits`
// significant digits (4 for metrics; data rows use more), booleans as true/false, null as "", arrays and
// objects as compact JSON.
std::string FormatCell(const Json& value, int float_digits = 4);

// Replaces control characters with a visible escape ("\n", "\t", "\x1b") and truncates to max_width code
// points with "…" (0 = no limit).
std::string SanitizeCell(const std::string& text, size_t max_width = 0);

// Number of UTF-8 code points in `text` (continuation bytes are not counted).
size_t DisplayWidth(const std::string& text);

}  // namespace lathe::cli
