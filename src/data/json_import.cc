#include "data/json_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <simdjson.h>

#include "data/typed_builder.h"

namespace lathe {

namespace {

constexpr size_t kBlockBytes = size_t{8} << 20;
constexpr size_t kMaxKeyPathBytes = 1024;
constexpr size_t kRawCaptureBytes = 64 << 10;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// One record as the reader found it. `text` stays valid (with simdjson padding after it) until the next
// call to Next().
struct RawRecord {
  std::string_view text;
  int64_t number = 0;      // physical line (JSON Lines) or 1-based element index (array)
  bool oversized = false;  // longer than max_record_bytes: `text` is only its first bytes
  int64_t end_offset = 0;  // file offset just past the record, for progress
};

// Streams records out of the file with pread, one block at a time.
class RecordReader {
 public:
  ~RecordReader() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open(const std::string& path, JsonLayout layout, size_t max_record_bytes) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return Status::NotFound("input file " + path + " does not exist");
      return Status::InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::Internal("stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
    size_ = st.st_size;
    max_record_ = max_record_bytes;
    cap_ = static_cast<size_t>(std::min<int64_t>(size_, static_cast<int64_t>(max_record_bytes + kBlockBytes))) + 1;
    buf_.reset(new char[cap_ + simdjson::SIMDJSON_PADDING]);
    std::memset(buf_.get() + cap_, ' ', simdjson::SIMDJSON_PADDING);
    RETURN_IF_ERROR(Fill());
    if (len_ >= 3 && std::memcmp(buf_.get(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;
    // The first non-blank byte decides the layout.
    size_t p = pos_;
    for (;;) {
      while (p < len_ && IsBlank(buf_[p])) ++p;
      if (p < len_ || eof_) break;
      line_ += std::count(buf_.get() + pos_, buf_.get() + p, '\n');
      pos_ = p;
      RETURN_IF_ERROR(Refill());
      p = pos_;
    }
    if (p >= len_) return Status::InvalidArgument("the file holds no JSON records (it is empty)");
    bool is_array = buf_[p] == '[';
    if (layout == JsonLayout::kArray && !is_array) {
      return Status::InvalidArgument("expected a JSON array (the file does not start with '[')")
          .WithDetail(ErrorDetail::Line(1, "not a JSON array"));
    }
    array_ = layout == JsonLayout::kArray || (layout == JsonLayout::kAuto && is_array);
    if (array_) {
      line_ += std::count(buf_.get() + pos_, buf_.get() + p, '\n');
      pos_ = p + 1;
    }
    return Status::Ok();
  }

  bool is_array() const { return array_; }
  int64_t size() const { return size_; }

  // Next record; false at the end. Errors are file-level (the structure of the array, I/O).
  Result<bool> Next(RawRecord* rec) { return array_ ? NextElement(rec) : NextLine(rec); }

 private:
  // Moves [pos_, len_) to the front and reads more.
  Status Refill() {
    if (pos_ > 0) {
      std::memmove(buf_.get(), buf_.get() + pos_, len_ - pos_);
      file_off_ += static_cast<int64_t>(pos_);
      len_ -= pos_;
      pos_ = 0;
    }
    size_t before = len_;
    RETURN_IF_ERROR(Fill());
    // The buffer is sized so a record always fits; no progress means the file grew under us.
    if (len_ == before && !eof_) return Status::Internal("the input file changed while it was being imported");
    return Status::Ok();
  }
  Status Fill() {
    while (len_ < cap_ && !eof_) {
      ssize_t r = ::pread(fd_, buf_.get() + len_, cap_ - len_, file_off_ + static_cast<int64_t>(len_));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::Internal(std::string("reading the input: ") + std::strerror(errno));
      }
      if (r == 0) {
        eof_ = true;
        break;
      }
      len_ += static_cast<size_t>(r);
    }
    return Status::Ok();
  }
  int64_t Offset(size_t p) const { return file_off_ + static_cast<int64_t>(p); }

  Result<bool> NextLine(RawRecord* rec) {
    for (;;) {
      const char* base = buf_.get();
      const void* nl = std::memchr(base + pos_, '\n', len_ - pos_);
      size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - base) : len_;
      if (nl == nullptr && !eof_) {
        if (len_ - pos_ > max_record_) return SkipLongLine(rec);
        RETURN_IF_ERROR(Refill());
        continue;
      }
      if (pos_ >= len_ && eof_) return false;
      ++line_;
      size_t begin = pos_;
      pos_ = nl ? end + 1 : len_;
      size_t b = begin;
      while (b < end && IsBlank(base[b])) ++b;
      if (b == end) continue;  // blank line
      if (end - begin > max_record_) {
        raw_.assign(base + begin, std::min(end - begin, kRawCaptureBytes));
        *rec = RawRecord{raw_, line_, true, Offset(pos_)};
        return true;
      }
      *rec = RawRecord{std::string_view(base + begin, end - begin), line_, false, Offset(pos_)};
      return true;
    }
  }

  // The line at pos_ is longer than max_record_: keep its head for the quarantine and skip the rest.
  Result<bool> SkipLongLine(RawRecord* rec) {
    raw_.assign(buf_.get() + pos_, std::min(len_ - pos_, kRawCaptureBytes));
    ++line_;
    for (;;) {
      const void* nl = std::memchr(buf_.get() + pos_, '\n', len_ - pos_);
      if (nl != nullptr) {
        pos_ = static_cast<size_t>(static_cast<const char*>(nl) - buf_.get()) + 1;
        break;
      }
      pos_ = len_;
      if (eof_) break;
      RETURN_IF_ERROR(Refill());
    }
    *rec = RawRecord{raw_, line_, true, Offset(pos_)};
    return true;
  }

  Status StructureError(const std::string& what) const {
    return Status::InvalidArgument("line " + std::to_string(line_ + 1) + ": " + what)
        .WithDetail(ErrorDetail::Line(line_ + 1, what));
  }

  // Skips blanks (counting lines); false at end of input.
  Result<bool> SkipBlanks() {
    for (;;) {
      while (pos_ < len_ && IsBlank(buf_[pos_])) line_ += buf_[pos_++] == '\n';
      if (pos_ < len_) return true;
      if (eof_) return false;
      RETURN_IF_ERROR(Refill());
    }
  }

  Result<bool> NextElement(RawRecord* rec) {
    if (done_) return false;
    ASSIGN_OR_RETURN(bool more, SkipBlanks());
    if (!more) return StructureError("unexpected end of file: the JSON array is not closed");
    if (started_) {
      char c = buf_[pos_];
      if (c == ']') return Finish();
      if (c != ',') return StructureError("expected ',' or ']' after record " + std::to_string(index_));
      ++pos_;
      ASSIGN_OR_RETURN(more, SkipBlanks());
      if (!more) return StructureError("unexpected end of file: the JSON array is not closed");
      if (buf_[pos_] == ']') return StructureError("a ',' is followed by ']' (a trailing comma)");
    } else {
      started_ = true;
      if (buf_[pos_] == ']') {
        ++pos_;
        ASSIGN_OR_RETURN(bool rest, SkipBlanks());
        if (rest) return StructureError("unexpected content after the JSON array");
        return Status::InvalidArgument("the file holds no JSON records (the array is empty)")
            .WithDetail(ErrorDetail::Line(line_ + 1, "empty array"));
      }
    }
    // Scan one element: up to ',' or ']' at depth 0, honouring strings and escapes.
    ++index_;
    size_t start = pos_;
    size_t p = pos_;
    int64_t depth = 0;
    bool in_string = false, escape = false, oversized = false;
    for (;;) {
      const char* b = buf_.get();
      bool ended = false;
      while (p < len_) {
        char c = b[p];
        if (in_string) {
          if (escape) {
            escape = false;
          } else if (c == '\\') {
            escape = true;
          } else if (c == '"') {
            in_string = false;
          } else if (c == '\n') {
            ++line_;
          }
          ++p;
          continue;
        }
        if (c == '"') {
          in_string = true;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (depth == 0) {
            if (c == ']') {
              ended = true;
              break;
            }
          } else if (--depth == 0) {
            ++p;
            ended = true;
            break;
          }
        } else if (c == ',' && depth == 0) {
          ended = true;
          break;
        } else if (c == '\n') {
          ++line_;
        }
        ++p;
      }
      if (!oversized && p - start > max_record_) {
        oversized = true;
        raw_.assign(b + start, std::min(p - start, kRawCaptureBytes));
      }
      if (ended) break;
      if (eof_) return StructureError("unexpected end of file inside record " + std::to_string(index_) +
                                      ": the JSON array is not closed");
      if (oversized) {
        pos_ = p;  // drop what was scanned
        start = p;
      } else {
        pos_ = start;
      }
      size_t scanned = p - pos_;
      RETURN_IF_ERROR(Refill());
      start = 0;
      p = scanned;
    }
    pos_ = p;
    if (oversized) {
      *rec = RawRecord{raw_, index_, true, Offset(pos_)};
    } else {
      *rec = RawRecord{std::string_view(buf_.get() + start, p - start), index_, false, Offset(pos_)};
    }
    return true;
  }

  Result<bool> Finish() {
    ++pos_;
    done_ = true;
    ASSIGN_OR_RETURN(bool rest, SkipBlanks());
    if (rest) return StructureError("unexpected content after the JSON array");
    return false;
  }

  int fd_ = -1;
  int64_t size_ = 0;
  size_t max_record_ = 0;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, len_ = 0, pos_ = 0;
  int64_t file_off_ = 0;
  bool eof_ = false;
  bool array_ = false;
  bool started_ = false, done_ = false;
  int64_t line_ = 0;   // lines completed before pos_ (JSON Lines: the current line number)
  int64_t index_ = 0;  // array elements seen
  std::string raw_;
};

struct FlatCell {
  size_t column;
  CellValue value;
};

// Parses one record and flattens it into (column, value) cells; owns the column names.
class Flattener {
 public:
  Flattener(const JsonImportOptions& opts) : opts_(opts) {
    // Capacity grows on demand; the depth limit is fixed here.
    alloc_error_ = parser_.allocate(1 << 16, opts.max_depth);
  }

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<FlatCell>& cells() const { return cells_; }
  void set_frozen(bool frozen) { frozen_ = frozen; }

  // Parses `text` (padded). False with `reason` (and `column` when one is to blame) for a bad row; an
  // error Status for a file-level problem.
  Result<bool> Parse(std::string_view text, std::string* reason, std::string* column) {
    if (alloc_error_) return Status::ResourceExhausted("cannot allocate the JSON parser");
    cells_.clear();
    texts_.clear();
    column->clear();
    first_new_ = names_.size();
    simdjson::dom::element root;
    auto err = parser_.parse(text.data(), text.size(), false).get(root);
    if (err == simdjson::NUMBER_ERROR) {
      // simdjson rejects integers beyond 64 bits; read them as floats (as the contract says) and retry.
      Patch(text);
      err = parser_.parse(patched_.data(), text.size() + extra_, false).get(root);
      if (err == simdjson::NUMBER_ERROR) {
        *reason = "a number is malformed or out of range";
        return Reject();
      }
    }
    if (err) {
      *reason = err == simdjson::DEPTH_ERROR
                    ? "nesting deeper than max_depth (" + std::to_string(opts_.max_depth) + ")"
                    : std::string("malformed JSON: ") + simdjson::error_message(err);
      return Reject();
    }
    if (!root.is_object()) {
      *reason = "the record is not a JSON object";
      return Reject();
    }
    ++stamp_;
    if (stamp_ == 0) {
      std::fill(seen_.begin(), seen_.end(), 0);
      stamp_ = 1;
    }
    path_.clear();
    leaf_ = 0;
    ASSIGN_OR_RETURN(bool ok, Walk(root.get_object().value_unsafe(), reason, column));
    if (!ok) return Reject();
    return true;
  }

  // Forgets the columns the last parsed record introduced (it turned out to be a bad row).
  bool Reject() {
    for (size_t c = first_new_; c < names_.size(); ++c) index_.erase(names_[c]);
    names_.resize(first_new_);
    seen_.resize(first_new_);
    return false;
  }

 private:
  // Copies the record, appending ".0" to integer literals of 20 or more digits.
  void Patch(std::string_view text) {
    patched_.clear();
    patched_.reserve(text.size() + 64 + simdjson::SIMDJSON_PADDING);
    bool in_string = false, escape = false;
    size_t i = 0;
    while (i < text.size()) {
      char c = text[i];
      if (in_string) {
        patched_ += c;
        if (escape) {
          escape = false;
        } else if (c == '\\') {
          escape = true;
        } else if (c == '"') {
          in_string = false;
        }
        ++i;
        continue;
      }
      if (c == '"') in_string = true;
      if ((c >= '0' && c <= '9') || c == '-') {
        size_t j = i + (c == '-');
        while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
        patched_.append(text.substr(i, j - i));
        bool integral = j >= text.size() || (text[j] != '.' && text[j] != 'e' && text[j] != 'E');
        if (integral && j - i - (c == '-') >= 20) patched_ += ".0";
        i = j;
        continue;
      }
      patched_ += c;
      ++i;
    }
    extra_ = patched_.size() - text.size();
    patched_.append(simdjson::SIMDJSON_PADDING, ' ');
  }

  Result<size_t> ColumnFor(std::string* reason) {
    if (leaf_ < predicted_.size()) {
      size_t c = predicted_[leaf_];
      if (c < names_.size() && names_[c] == path_) return c;
    }
    auto it = index_.find(path_);
    size_t c;
    if (it != index_.end()) {
      c = it->second;
    } else {
      if (frozen_) return Status::Internal("the input file changed during the import (new key \"" + path_ + "\")");
      if (names_.size() >= opts_.max_columns) {
        return Status::InvalidArgument("the records hold more than " + std::to_string(opts_.max_columns) +
                                       " distinct keys (max_columns)");
      }
      if (path_.size() > kMaxKeyPathBytes) {
        *reason = "a key path is longer than " + std::to_string(kMaxKeyPathBytes) + " bytes";
        return SIZE_MAX;
      }
      c = names_.size();
      names_.push_back(path_);
      seen_.push_back(0);
      index_.emplace(path_, c);
    }
    if (leaf_ >= predicted_.size()) predicted_.resize(leaf_ + 1, SIZE_MAX);
    predicted_[leaf_] = c;
    return c;
  }

  Result<bool> Walk(simdjson::dom::object obj, std::string* reason, std::string* column) {
    size_t base = path_.size();
    for (auto field : obj) {
      std::string_view key = field.key;
      if (key.empty()) {
        *reason = "a key is empty";
        *column = path_;
        return false;
      }
      path_.resize(base);
      if (base > 0) path_ += '.';
      path_.append(key);
      simdjson::dom::element v = field.value;
      CellValue cell;
      switch (v.type()) {
        case simdjson::dom::element_type::OBJECT: {
          ASSIGN_OR_RETURN(bool ok, Walk(v.get_object().value_unsafe(), reason, column));
          if (!ok) return false;
          continue;
        }
        case simdjson::dom::element_type::ARRAY:
          texts_.push_back(simdjson::minify(v));
          cell.kind = CellKind::kText;
          cell.text = texts_.back();
          break;
        case simdjson::dom::element_type::STRING:
          cell.kind = CellKind::kString;
          cell.text = v.get_string().value_unsafe();
          break;
        case simdjson::dom::element_type::INT64:
          cell.kind = CellKind::kInt;
          cell.i = v.get_int64().value_unsafe();
          break;
        case simdjson::dom::element_type::UINT64:
          cell.kind = CellKind::kFloat;
          cell.f = static_cast<double>(v.get_uint64().value_unsafe());
          break;
        case simdjson::dom::element_type::DOUBLE:
          cell.kind = CellKind::kFloat;
          cell.f = v.get_double().value_unsafe();
          break;
        case simdjson::dom::element_type::BOOL:
          cell.kind = CellKind::kBool;
          cell.i = v.get_bool().value_unsafe() ? 1 : 0;
          break;
        case simdjson::dom::element_type::NULL_VALUE: break;
      }
      ASSIGN_OR_RETURN(size_t c, ColumnFor(reason));
      if (c == SIZE_MAX) {
        *column = path_.substr(0, 64);
        return false;
      }
      ++leaf_;
      if (seen_[c] == stamp_) {
        *reason = "duplicate key";
        *column = path_;
        return false;
      }
      seen_[c] = stamp_;
      cells_.push_back(FlatCell{c, cell});
    }
    path_.resize(base);
    return true;
  }

  const JsonImportOptions& opts_;
  simdjson::dom::parser parser_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::string> names_;
  std::vector<uint32_t> seen_;
  uint32_t stamp_ = 0;
  std::vector<size_t> predicted_;  // column of the k-th leaf of the previous record
  size_t leaf_ = 0;
  size_t first_new_ = 0;
  bool frozen_ = false;
  std::string path_;
  std::deque<std::string> texts_;
  std::vector<FlatCell> cells_;
  std::string patched_;
  size_t extra_ = 0;
  simdjson::error_code alloc_error_ = simdjson::SUCCESS;
};

Result<ImportResult> Import(const std::string& input_path, const std::string& output_path,
                            const JsonImportOptions& opts, const ImportOptions& import, const ProgressFn& progress,
                            const CancelFn& cancel) {
  RETURN_IF_ERROR(CheckBadRowOptions(import));
  for (const auto& [col, fmt] : import.hints.date_formats) RETURN_IF_ERROR(ValidateDateFormat(col, fmt));
  auto report = [&](double f) {
    if (progress) progress(std::clamp(f, 0.0, 1.0));
  };
  auto cancelled = [&] { return cancel && cancel(); };

  // Pass 1: columns, types, bad rows.
  RecordReader reader;
  RETURN_IF_ERROR(reader.Open(input_path, opts.layout, opts.max_record_bytes));
  const double size = static_cast<double>(std::max<int64_t>(reader.size(), 1));
  BadRowSink bad(import, reader.is_array() ? "record" : "line");
  Flattener flat(opts);
  CellConverter conv(import.hints);
  std::vector<ColumnTypeTracker> trackers;
  std::vector<std::optional<ColumnSpec>> hinted;
  std::vector<int64_t> bad_ordinals;  // records (0-based, in reading order) dropped as bad
  int64_t ordinal = 0, good = 0;
  std::string reason, column;
  ConvertedCell scratch;
  RawRecord rec;
  for (;; ++ordinal) {
    ASSIGN_OR_RETURN(bool more, reader.Next(&rec));
    if (!more) break;
    if ((ordinal & 1023) == 0) {
      if (cancelled()) return Status::Cancelled("import cancelled");
      report(0.5 * static_cast<double>(rec.end_offset) / size);
    }
    bool ok = false;
    if (rec.oversized) {
      reason = "the record is longer than max_record_bytes (" + std::to_string(opts.max_record_bytes) + ")";
      column.clear();
    } else {
      ASSIGN_OR_RETURN(ok, flat.Parse(rec.text, &reason, &column));
    }
    if (ok) {
      const auto& names = flat.names();
      while (hinted.size() < names.size()) hinted.push_back(HintedSpec(names[hinted.size()], import.hints));
      for (const FlatCell& cell : flat.cells()) {
        if (!hinted[cell.column]) continue;
        CellValue v = conv.Normalize(cell.value);
        if (!conv.Convert(v, *hinted[cell.column], &scratch, &reason)) {
          ok = false;
          column = names[cell.column];
          flat.Reject();
          break;
        }
      }
    }
    if (!ok) {
      hinted.resize(std::min(hinted.size(), flat.names().size()));
      RETURN_IF_ERROR(bad.Report(rec.number, column, reason, rec.text));
      bad_ordinals.push_back(ordinal);
      continue;
    }
    ++good;
    trackers.resize(flat.names().size());
    for (const FlatCell& cell : flat.cells()) trackers[cell.column].Observe(conv.Normalize(cell.value));
  }
  if (good == 0) {
    if (ordinal == 0) return Status::InvalidArgument("the file holds no JSON records");
    return Status::InvalidArgument("none of the " + std::to_string(ordinal) + " records could be read (" +
                                   std::to_string(bad.count()) + " bad)");
  }
  const std::vector<std::string> names = flat.names();
  trackers.resize(names.size());
  std::vector<ColumnType> inferred(names.size());
  for (size_t c = 0; c < names.size(); ++c) inferred[c] = trackers[c].Resolve();
  ASSIGN_OR_RETURN(std::vector<ColumnSpec> specs, BuildColumnSpecs(names, inferred, import.hints));
  std::vector<ColumnType> types(names.size());
  for (size_t c = 0; c < names.size(); ++c) types[c] = specs[c].type;

  // Pass 2: convert and write.
  ASSIGN_OR_RETURN(auto writer, RowGroupWriter::Create(output_path, names, types, import.zstd_level));
  RecordReader again;
  RETURN_IF_ERROR(again.Open(input_path, opts.layout, opts.max_record_bytes));
  flat.set_frozen(true);
  size_t next_bad = 0;
  auto changed = [](int64_t n) {
    return Status::Internal("the input file changed during the import (near record " + std::to_string(n) + ")");
  };
  for (int64_t k = 0;; ++k) {
    ASSIGN_OR_RETURN(bool more, again.Next(&rec));
    if (!more) {
      if (k != ordinal) return changed(k);
      break;
    }
    if ((k & 1023) == 0) {
      if (cancelled()) return Status::Cancelled("import cancelled");
      report(0.5 + 0.5 * static_cast<double>(rec.end_offset) / size);
    }
    if (next_bad < bad_ordinals.size() && bad_ordinals[next_bad] == k) {
      ++next_bad;
      continue;
    }
    if (rec.oversized) return changed(rec.number);
    ASSIGN_OR_RETURN(bool ok, flat.Parse(rec.text, &reason, &column));
    if (!ok) return changed(rec.number);
    RETURN_IF_ERROR(writer->StartRow());
    for (const FlatCell& cell : flat.cells()) {
      ConvertedCell out;
      if (!conv.Convert(conv.Normalize(cell.value), specs[cell.column], &out, &reason)) {
        return Status::Internal("record " + std::to_string(rec.number) + ": column \"" + names[cell.column] +
                                "\": " + reason + " after type inference (the input changed?)");
      }
      writer->Set(cell.column, out);
    }
  }
  if (cancelled()) return Status::Cancelled("import cancelled");
  ASSIGN_OR_RETURN(int64_t out_bytes, writer->Finish());
  Status committed = bad.Commit();
  if (!committed.ok()) {
    ::unlink(output_path.c_str());
    return committed;
  }
  ImportResult result;
  result.rows = writer->rows();
  result.input_bytes = reader.size();
  result.output_bytes = out_bytes;
  result.bad_rows = bad.count();
  result.encoding = "utf-8";
  for (size_t c = 0; c < names.size(); ++c) {
    result.columns.push_back(ColumnInfo{names[c], types[c], writer->stats()[c].missing});
  }
  report(1.0);
  return result;
}

}  // namespace

Result<ImportResult> ImportJsonFile(const std::string& input_path, const std::string& output_path,
                                    const JsonImportOptions& json, const ImportOptions& import,
                                    const ProgressFn& progress, const CancelFn& cancel) {
  if (json.max_depth == 0 || json.max_record_bytes == 0 || json.max_columns == 0) {
    return Status::InvalidArgument("max_depth, max_record_bytes and max_columns must be positive");
  }
  try {
    return Import(input_path, output_path, json, import, progress, cancel);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while importing " + input_path);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("import failed: ") + e.what());
  }
}

}  // namespace lathe
