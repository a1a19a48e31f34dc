#include "data/csv_tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace lathe {

CsvTokenizer::CsvTokenizer(char delimiter, size_t max_field_bytes, size_t max_line_bytes)
    : delim_(delimiter), max_field_(max_field_bytes), max_line_(max_line_bytes) {
  special_[static_cast<unsigned char>(delimiter)] = true;
  special_[static_cast<unsigned char>('\n')] = true;
  fields_.reserve(64);
}

void CsvTokenizer::SetBuffer(const char* begin, const char* end, bool eof) {
  begin_ = begin;
  end_ = end;
  eof_ = eof;
  pos_ = begin;
  row_start_ = begin;
}

CsvRowStatus CsvTokenizer::Fail(const char* where, int64_t line, std::string message) {
  error_ = std::move(message);
  error_line_ = line;
  error_pos_ = where;
  return CsvRowStatus::kError;
}

CsvRowStatus CsvTokenizer::NeedMore() {
  if (static_cast<size_t>(end_ - row_start_) > max_line_) {
    return Fail(row_start_, row_line_,
                "line is longer than the limit of " + std::to_string(max_line_) + " bytes (max_line_bytes)");
  }
  pos_ = row_start_;
  lines_ = row_line_;
  return CsvRowStatus::kNeedMore;
}

CsvRowStatus CsvTokenizer::NextRow() {
  for (;;) {
    if (pos_ >= end_) {
      row_start_ = pos_;
      row_line_ = lines_;
      return eof_ ? CsvRowStatus::kEnd : CsvRowStatus::kNeedMore;
    }
    row_start_ = pos_;
    row_line_ = lines_;
    fields_.clear();
    const char* p = pos_;
    int64_t quoted_newlines = 0;
    bool row_done = false;
    while (!row_done) {
      const char* field_start = p;
      if (p < end_ && *p == '"') {
        const char* q = p + 1;
        bool escaped = false;
        const char* closing = nullptr;
        for (;;) {
          const void* hit = q < end_ ? std::memchr(q, '"', static_cast<size_t>(end_ - q)) : nullptr;
          if (hit == nullptr) {
            if (!eof_) return NeedMore();
            int64_t line = row_line_ + std::count(row_start_, p, '\n');
            return Fail(p, line, "unclosed quote: the quoted field that begins on this line is never closed");
          }
          const char* h = static_cast<const char*>(hit);
          if (h + 1 == end_ && !eof_) return NeedMore();
          if (h + 1 < end_ && h[1] == '"') {
            escaped = true;
            q = h + 2;
            continue;
          }
          closing = h;
          break;
        }
        size_t size = static_cast<size_t>(closing - (p + 1));
        quoted_newlines += std::count(p + 1, closing, '\n');
        if (size > max_field_) {
          return Fail(p, row_line_, "field " + std::to_string(fields_.size() + 1) + " is longer than the limit of " +
                                        std::to_string(max_field_) + " bytes (max_field_bytes)");
        }
        fields_.push_back({p + 1, static_cast<uint32_t>(size), true, escaped});
        p = closing + 1;
        if (p == end_) {
          if (!eof_) return NeedMore();
          row_done = true;
        } else if (*p == delim_) {
          ++p;
        } else if (*p == '\n') {
          ++p;
          ++quoted_newlines;
          row_done = true;
        } else if (*p == '\r' && (p + 1 == end_ || p[1] == '\n')) {
          if (p + 1 == end_ && !eof_) return NeedMore();
          p += (p + 1 == end_) ? 1 : 2;
          if (p[-1] == '\n') ++quoted_newlines;
          row_done = true;
        } else {
          std::string shown = (*p >= 0x20 && *p < 0x7f) ? std::string(1, *p) : "byte " + std::to_string(
                                                                                     static_cast<unsigned char>(*p));
          return Fail(p, row_line_ + quoted_newlines,
                      "unexpected character '" + shown + "' after the closing quote of field " +
                          std::to_string(fields_.size()) + " (quote the whole field and double inner quotes)");
        }
        (void)field_start;
      } else {
        const char* q = p;
        while (q < end_ && !special_[static_cast<unsigned char>(*q)]) ++q;
        if (q == end_) {
          if (!eof_) return NeedMore();
          const char* fe = q;
          if (fe > p && fe[-1] == '\r') --fe;
          if (static_cast<size_t>(fe - p) > max_field_) {
            return Fail(p, row_line_ + quoted_newlines, "field " + std::to_string(fields_.size() + 1) +
                                                          " is longer than the limit of " + std::to_string(max_field_) +
                                                          " bytes (max_field_bytes)");
          }
          fields_.push_back({p, static_cast<uint32_t>(fe - p), false, false});
          p = q;
          row_done = true;
        } else {
          const char* fe = q;
          if (*q == '\n') {
            if (fe > p && fe[-1] == '\r') --fe;
            ++quoted_newlines;
            row_done = true;
          }
          if (static_cast<size_t>(fe - p) > max_field_) {
            return Fail(p, row_line_, "field " + std::to_string(fields_.size() + 1) + " is longer than the limit of " +
                                          std::to_string(max_field_) + " bytes (max_field_bytes)");
          }
          fields_.push_back({p, static_cast<uint32_t>(fe - p), false, false});
          p = q + 1;
        }
      }
    }
    if (static_cast<size_t>(p - row_start_) > max_line_) {
      return Fail(row_start_, row_line_,
                  "line is longer than the limit of " + std::to_string(max_line_) + " bytes (max_line_bytes)");
    }
    pos_ = p;
    lines_ += quoted_newlines;
    if (fields_.size() == 1 && fields_[0].size == 0 && !fields_[0].quoted) continue;  // blank line
    return CsvRowStatus::kRow;
  }
}

std::string_view CsvTokenizer::Unescape(const CsvField& f, std::string* scratch) {
  if (!f.escaped) return f.raw();
  scratch->clear();
  for (uint32_t i = 0; i < f.size; ++i) {
    scratch->push_back(f.data[i]);
    if (f.data[i] == '"') ++i;  // skip the second quote of a pair
  }
  return *scratch;
}

char DetectDelimiter(std::string_view sample) {
  static const char kCandidates[] = {',', '\t', ';', '|'};
  // Per line, count each candidate outside quotes.
  std::vector<std::array<int, 4>> counts;
  std::array<int, 4> cur{};
  bool in_quotes = false;
  for (size_t i = 0; i < sample.size() && counts.size() < 50; ++i) {
    char c = sample[i];
    if (c == '"') {
      in_quotes = !in_quotes;
    } else if (!in_quotes && c == '\n') {
      counts.push_back(cur);
      cur = {};
    } else if (!in_quotes) {
      for (int k = 0; k < 4; ++k) {
        if (c == kCandidates[k]) ++cur[k];
      }
    }
  }
  if (cur != std::array<int, 4>{} && counts.size() < 50) counts.push_back(cur);
  if (counts.empty()) return ',';
  // Score: the number of lines whose count equals the header line's count (non-zero), then the count.
  int best = -1;
  long best_score = 0;
  for (int k = 0; k < 4; ++k) {
    int header = counts[0][k];
    if (header == 0) continue;
    long agree = 0;
    for (const auto& line : counts) agree += line[k] == header;
    long score = agree * 1000 + header;
    if (score > best_score) best_score = score, best = k;
  }
  return best < 0 ? ',' : kCandidates[best];
}

int64_t FindInvalidUtf8(const char* data, size_t size) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < size) {
    // Fast path: 8 ASCII bytes at a time.
    if (i + 8 <= size) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
    else return static_cast<int64_t>(i);
    if (i + n > size) return static_cast<int64_t>(i);
    for (size_t k = 1; k < n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return static_cast<int64_t>(i);
    }
    i += n;
  }
  return -1;
}

}  // namespace lathe
