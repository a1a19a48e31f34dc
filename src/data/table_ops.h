// Row selection and column helpers on Table used by expressions and recipes. Pure functions on values;
// thread-safe on distinct tables; no I/O. Memory: each selection allocates the output once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "data/table.h"

namespace lathe {

// Checks the Table invariants every reader relies on: each column has num_rows validity bytes, exactly the
// value vector of its type sized num_rows, string codes inside the dictionary, unique column names.
// kInvalidArgument naming the column otherwise.
Status ValidateTable(const Table& t);

// A column of `n` rows, all missing, with the value vector of `type` allocated.
Column NullColumn(std::string name, ColumnType type, size_t n);

// Rows where keep[i] != 0, in order (keep.size() == t.num_rows). Dictionaries are kept as they are.
Table SelectRows(const Table& t, const std::vector<uint8_t>& keep);
// Keeps the rows where keep[i] != 0, in place (no allocation: vectors shrink).
void KeepRowsInPlace(Table& t, const std::vector<uint8_t>& keep);
// The listed rows, in the given order (indices must be in range; repeats allowed).
Table TakeRows(const Table& t, const std::vector<int64_t>& rows);
// The first min(n, num_rows) rows.
Table HeadRows(Table t, int64_t n);

// Rewrites a string column's dictionary: dictionary entry k becomes new_values[k] (new_values.size() ==
// dict.size()); equal results are merged so the dictionary stays duplicate-free. Entries with
// drop[k] != 0 (when `drop` is non-empty) make their rows missing.
void RewriteDictionary(Column& c, std::vector<std::string> new_values, const std::vector<uint8_t>& drop = {});
// Removes unused and duplicate dictionary entries of a string column (codes remapped, order of first use).
void CompactDictionary(Column& c);

// A canonical text form of a non-missing value: integers in decimal, floats shortest round-trip ("1.5",
// "2" for 2.0), booleans true/false, datetimes RFC 3339, strings as they are.
std::string ValueText(const Column& c, size_t row);

// "a, b, c" — the column names, for error messages.
std::string ColumnList(const Table& t);
// The candidate closest to `name` by edit distance if it is close enough to be a likely typo, else "".
std::string ClosestName(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace lathe
