#include "cli/table_printer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace lathe::cli {
namespace {

TEST(TablePrinterTest, AlignsColumnsAndRightAlignsNumbers) {
  TablePrinter t({"NAME", "ROWS", "TYPE"});
  t.AddRow({"iris", "150", "float"});
  t.AddRow({"churn-data", "7", "string"});
  EXPECT_EQ(t.Render(),
            "NAME        ROWS  TYPE\n"
            "iris         150  float\n"
            "churn-data     7  string\n");
}

TEST(TablePrinterTest, MissingAndExtraCellsAndNoTrailingSpaces) {
  TablePrinter t({"A", "B"});
  t.AddRow({"x"});
  t.AddRow({"y", "z", "dropped"});
  EXPECT_EQ(t.Render(), "A  B\nx\ny  z\n");
  EXPECT_EQ(TablePrinter({"ONLY"}).Render(), "ONLY\n");
}

TEST(TablePrinterTest, EmptyCellsDoNotMakeAColumnTextual) {
  TablePrinter t({"N", "S"});
  t.AddRow({"", "a"});
  t.AddRow({"10", "b"});
  t.AddRow({"-2.5e+06", "c"});
  EXPECT_EQ(t.Render(), "       N  S\n          a\n      10  b\n-2.5e+06  c\n");
}

TEST(TablePrinterTest, Utf8WidthAndTruncation) {
  TablePrinter t({"NAME", "X"}, 5);
  t.AddRow({"héllo wörld", "1"});
  t.AddRow({"ab", "2"});
  // 4 code points + the ellipsis.
  EXPECT_EQ(t.Render(), "NAME   X\nhéll…  1\nab     2\n");
}

TEST(TablePrinterTest, ControlCharactersAreEscaped) {
  TablePrinter t({"V"});
  t.AddRow({"a\x1b[31mred\nb\tc\rd\x7f"});
  EXPECT_EQ(t.Render(), "V\na\\x1b[31mred\\nb\\tc\\rd\\x7f\n");
  EXPECT_EQ(t.Render().find('\x1b'), std::string::npos);
}

TEST(TablePrinterTest, DisplayWidthCountsCodePoints) {
  EXPECT_EQ(DisplayWidth(""), 0u);
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("é…"), 2u);
  EXPECT_EQ(SanitizeCell("abcdef", 3), "ab…");
  EXPECT_EQ(SanitizeCell("abc", 3), "abc");
  EXPECT_EQ(SanitizeCell("é\xff", 0), "é\xff");  // invalid UTF-8 passes through, sized by lead bytes
}

TEST(FormatTest, FourSignificantDigits) {
  EXPECT_EQ(FormatSignificant(0.912345), "0.9123");
  EXPECT_EQ(FormatSignificant(0.91), "0.91");
  EXPECT_EQ(FormatSignificant(12), "12");
  EXPECT_EQ(FormatSignificant(1234567), "1.235e+06");
  EXPECT_EQ(FormatSignificant(0.000123456), "0.0001235");
  EXPECT_EQ(FormatSignificant(-0.0), "0");
  EXPECT_EQ(FormatSignificant(std::nan("")), "nan");
  EXPECT_EQ(FormatSignificant(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(FormatSignificant(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(FormatSignificant(3.14159, 2), "3.1");
  EXPECT_EQ(FormatSignificant(3.14159, 0), "3");
  EXPECT_EQ(FormatSignificant(1.0 / 3, 100).size(), 19u);  // clamped to 17 digits
}

TEST(FormatTest, CellsByJsonType) {
  EXPECT_EQ(FormatCell(Json(nullptr)), "");
  EXPECT_EQ(FormatCell(Json("x")), "x");
  EXPECT_EQ(FormatCell(Json(true)), "true");
  EXPECT_EQ(FormatCell(Json(123456789012LL)), "123456789012");
  EXPECT_EQ(FormatCell(Json(18446744073709551615ULL)), "18446744073709551615");
  EXPECT_EQ(FormatCell(Json(0.87654321)), "0.8765");
  EXPECT_EQ(FormatCell(Json(46274.3), 10), "46274.3");
  EXPECT_EQ(FormatCell(Json(46274.3)), "4.627e+04");
  EXPECT_EQ(FormatCell(Json::parse(R"({"b":[1,2]})")), R"({"b":[1,2]})");
}

}  // namespace
}  // namespace lathe::cli
