// CsvTokenizer: splits RFC 4180 text held in a caller-owned buffer into rows of fields without copying.
// Quoted fields may contain delimiters, newlines and doubled quotes (""); rows end in LF or CRLF; blank
// lines are skipped. Fields are views into the buffer; a quoted field with doubled quotes is flagged and
// unescaped on demand by Unescape(). Not thread-safe; one tokenizer per thread. Never reads outside
// [begin, end) and never allocates per field (the field vector is reused).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

struct CsvField {
  const char* data;
  uint32_t size;
  bool quoted;
  bool escaped;  // quoted and contains "" pairs: use CsvTokenizer::Unescape for the value
  std::string_view raw() const { return {data, size}; }
};

enum class CsvRowStatus : uint8_t {
  kRow,       // fields() holds the next row
  kNeedMore,  // the buffer ends inside a row and is not the end of input: extend it (row_start() stays valid)
  kEnd,       // no more rows
  kError,     // error_message() / error_line(): the input is malformed
};

class CsvTokenizer {
 public:
  CsvTokenizer(char delimiter, size_t max_field_bytes, size_t max_line_bytes);

  // Points the tokenizer at [begin, end); `eof` says nothing follows `end`. Keeps the line counter, so after
  // kNeedMore the caller passes a larger buffer that starts at the old row_start() contents.
  void SetBuffer(const char* begin, const char* end, bool eof);

  CsvRowStatus NextRow();

  const std::vector<CsvField>& fields() const { return fields_; }
  const char* pos() const { return pos_; }              // first byte not yet consumed
  const char* row_start() const { return row_start_; }  // first byte of the last row (or the unfinished one)
  int64_t lines() const { return lines_; }              // newlines consumed since construction
  int64_t row_line() const { return row_line_; }        // lines() at the start of the last row
  const std::string& error_message() const { return error_; }
  int64_t error_line() const { return error_line_; }  // 0-based, counted like lines()
  const char* error_pos() const { return error_pos_; }

  // The value of a quoted field with doubled quotes, written into `scratch`.
  static std::string_view Unescape(const CsvField& f, std::string* scratch);

 private:
  CsvRowStatus Fail(const char* where, int64_t line, std::string message);
  CsvRowStatus NeedMore();

  char delim_;
  size_t max_field_;
  size_t max_line_;
  bool special_[256] = {};
  const char* begin_ = nullptr;
  const char* end_ = nullptr;
  bool eof_ = false;
  const char* pos_ = nullptr;
  const char* row_start_ = nullptr;
  int64_t lines_ = 0;
  int64_t row_line_ = 0;
  std::vector<CsvField> fields_;
  std::string error_;
  int64_t error_line_ = 0;
  const char* error_pos_ = nullptr;
};

// Picks the delimiter among , \t ; | from a sample of the first lines: the candidate that appears
// (outside quotes) the same non-zero number of times on the most lines wins; ',' if none does.
char DetectDelimiter(std::string_view sample);

// Offset of the first invalid UTF-8 byte in [data, data+size), or -1 if it is all valid (overlongs,
// surrogates and code points past U+10FFFF are invalid).
int64_t FindInvalidUtf8(const char* data, size_t size);

}  // namespace lathe
