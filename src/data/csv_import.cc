#include "data/csv_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <unordered_map>

#include "data/checksum.h"
#include "data/csv_tokenizer.h"
#include "data/lcol_format.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

// A growable byte buffer that does not zero-initialize (reads overwrite it anyway).
class ByteBuffer {
 public:
  char* data() { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  void Reserve(size_t n) {
    size_t keep = size_;
    Resize(n);
    size_ = keep;
  }
  void Resize(size_t n) {
    if (n > cap_) {
      size_t cap = std::max(n, cap_ + cap_ / 2);
      std::unique_ptr<char[]> next(new char[cap]);
      if (size_ > 0) std::memcpy(next.get(), data_.get(), size_);
      data_ = std::move(next);
      cap_ = cap;
    }
    size_ = n;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

class InputFile {
 public:
  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return Status::NotFound("input file " + path + " does not exist");
      return Status::InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::Internal("stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
    size_ = st.st_size;
    return Status::Ok();
  }
  // Reads exactly n bytes at `offset` (thread-safe: pread).
  Status ReadAt(int64_t offset, char* dst, size_t n) const {
    while (n > 0) {
      ssize_t r = ::pread(fd_, dst, n, offset);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::Internal(std::string("reading the input: ") + std::strerror(errno));
      }
      if (r == 0) return Status::Internal("the input file shrank while it was being imported");
      dst += r;
      n -= static_cast<size_t>(r);
      offset += r;
    }
    return Status::Ok();
  }
  int64_t size() const { return size_; }

 private:
  int fd_ = -1;
  int64_t size_ = 0;
};

struct GroupSpan {
  int64_t begin = 0, end = 0;  // file offsets
  int64_t rows = 0;
  int64_t first_line = 0;  // relative to the segment in a SegmentScan; absolute (1-based) once merged
};

// One field of a buffered row group: its offset in the segment buffer and its length (bit 31: escaped).
struct FieldRef {
  uint32_t offset;
  uint32_t len_flags;
};
constexpr uint32_t kEscapedBit = 1u << 31;

// What one segment of the file produced: its rows, converted and encoded in the types the rows themselves
// support (joined across segments later).
struct SegmentResult {
  Status io;  // an I/O or internal failure (not an input error)
  int64_t start = 0, end_pos = 0;
  int64_t rows = 0, lines = 0;
  std::vector<GroupSpan> groups;
  std::vector<std::vector<EncodedChunk>> chunks;  // per group, per column
  bool has_error = false;
  std::string error;
  int64_t error_line = 0;  // relative newline count
};

struct ImportPlan {
  const InputFile* file = nullptr;
  const CsvOptions* opts = nullptr;
  char delim = ',';
  size_t ncols = 0;
  int64_t data_start = 0;
  size_t group_rows = 0;  // rows per group: 65536, fewer for very wide files so buffers stay bounded
};

std::string Plural(int64_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

std::string RaggedMessage(size_t expected, size_t got) {
  return "expected " + Plural(static_cast<int64_t>(expected), "field") + " (as in the header) but found " +
         std::to_string(got);
}

// Finds the first offset p >= from with byte p-1 == '\n' (a plausible row start), or the file size.
Result<int64_t> NextLineStart(const InputFile& f, int64_t from) {
  if (from <= 0) return int64_t{0};
  int64_t off = from - 1;
  char buf[1 << 16];
  while (off < f.size()) {
    size_t n = static_cast<size_t>(std::min<int64_t>(sizeof(buf), f.size() - off));
    RETURN_IF_ERROR(f.ReadAt(off, buf, n));
    const void* hit = std::memchr(buf, '\n', n);
    if (hit != nullptr) return off + (static_cast<const char*>(hit) - buf) + 1;
    off += static_cast<int64_t>(n);
  }
  return f.size();
}

// A chunk-local string dictionary: open addressing over views into the row group's buffer.
class ChunkDict {
 public:
  void Clear() {
    slots_.assign(64, 0);
    values_.clear();
    hashes_.clear();
    owned_.clear();
  }
  int32_t Insert(std::string_view v, bool stable) {
    uint64_t h = Hash64(v.data(), v.size());
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      uint32_t s = slots_[i];
      if (s == 0) {
        if (!stable) {
          owned_.emplace_back(v);
          v = owned_.back();
        }
        values_.push_back(v);
        hashes_.push_back(h);
        slots_[i] = static_cast<uint32_t>(values_.size());
        if (values_.size() * 2 > slots_.size()) Grow();
        return static_cast<int32_t>(values_.size() - 1);
      }
      if (hashes_[s - 1] == h && values_[s - 1] == v) return static_cast<int32_t>(s - 1);
    }
  }
  const std::vector<std::string_view>& values() const { return values_; }

 private:
  void Grow() {
    std::vector<uint32_t> next(slots_.size() * 2, 0);
    size_t mask = next.size() - 1;
    for (size_t k = 0; k < values_.size(); ++k) {
      size_t i = hashes_[k] & mask;
      while (next[i] != 0) i = (i + 1) & mask;
      next[i] = static_cast<uint32_t>(k + 1);
    }
    slots_ = std::move(next);
  }
  std::vector<uint32_t> slots_;
  std::vector<std::string_view> values_;
  std::vector<uint64_t> hashes_;
  std::deque<std::string> owned_;
};

// Buffers for converting one column of a row group, sized to the group capacity.
struct ColumnScratch {
  ColumnType type = ColumnType::kInt64;
  std::vector<uint8_t> valid;
  std::vector<int64_t> i64;
  std::vector<double> f64;
  std::vector<uint8_t> b;
  std::vector<int32_t> codes;
  ChunkDict dict;
  std::string unescaped;

  void Start(ColumnType t, size_t cap) {
    type = t;
    if (valid.size() < cap) valid.resize(cap);
    switch (t) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime:
        if (i64.size() < cap) i64.resize(cap);
        break;
      case ColumnType::kFloat64:
        if (f64.size() < cap) f64.resize(cap);
        break;
      case ColumnType::kBool:
        if (b.size() < cap) b.resize(cap);
        break;
      case ColumnType::kString:
        if (codes.size() < cap) codes.resize(cap);
        dict.Clear();
        break;
    }
  }

  // Converts the value of row r; false if it does not parse as `type`.
  bool Put(size_t r, const char* data, uint32_t size, bool escaped) {
    std::string_view raw(data, size);
    if (escaped) raw = CsvTokenizer::Unescape(CsvField{data, size, true, true}, &unescaped);
    std::string_view v = TrimBlanks(raw);
    if (IsMissingToken(v)) {
      valid[r] = 0;
      switch (type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime: i64[r] = 0; break;
        case ColumnType::kFloat64: f64[r] = 0; break;
        case ColumnType::kBool: b[r] = 0; break;
        case ColumnType::kString: codes[r] = 0; break;
      }
      return true;
    }
    valid[r] = 1;
    switch (type) {
      case ColumnType::kInt64: return ParseInt64(v, &i64[r]) == IntParse::kOk;
      case ColumnType::kFloat64: return ParseFloat64(v, &f64[r]);
      case ColumnType::kBool: {
        bool x;
        if (!ParseBool(v, &x)) return false;
        b[r] = x;
        return true;
      }
      case ColumnType::kDatetime: return ParseDatetimeMicros(v, &i64[r]);
      case ColumnType::kString: codes[r] = dict.Insert(raw, !escaped); return true;
    }
    return false;
  }

  EncodedChunk Encode(size_t n, int zstd_level) const {
    ChunkInput in;
    in.type = type;
    in.rows = n;
    in.valid = valid.data();
    in.i64 = i64.data();
    in.f64 = f64.data();
    in.b = b.data();
    in.codes = codes.data();
    in.dict = dict.values().data();
    in.dict_size = dict.values().size();
    return EncodeChunk(in, zstd_level);
  }
};

// The next candidate type after `t` failed for some value (inference order: integer, float, boolean,
// datetime, string).
ColumnType NextCandidate(ColumnType t) {
  switch (t) {
    case ColumnType::kInt64: return ColumnType::kFloat64;
    case ColumnType::kFloat64: return ColumnType::kBool;
    case ColumnType::kBool: return ColumnType::kDatetime;
    default: return ColumnType::kString;
  }
}

// Per-thread working memory, reused across segments (pooled) so large buffers are faulted in only once.
struct Workspace {
  ByteBuffer buf;
  std::vector<FieldRef> refs;  // column-major: refs[c * cap + row]
  std::vector<ColumnScratch> cols;
};

class WorkspacePool {
 public:
  std::unique_ptr<Workspace> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::make_unique<Workspace>();
    auto w = std::move(free_.back());
    free_.pop_back();
    return w;
  }
  void Give(std::unique_ptr<Workspace> w) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(w));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Workspace>> free_;
};

// Tokenizes the rows that start in [start, nominal_end), validating them, and converts and encodes them
// in row groups. With known_start < 0 the segment starts at the first line start at/after nominal_begin.
// With `forced_types`, only the columns marked in `only` are converted (in the forced types); used to
// re-encode a row group whose chunks do not fit the final column types.
SegmentResult ProcessSegment(const ImportPlan& plan, Workspace& ws, int64_t known_start, int64_t nominal_begin,
                             int64_t nominal_end, const std::vector<ColumnType>* forced_types = nullptr,
                             const std::vector<uint8_t>* only = nullptr) {
  SegmentResult r;
  const InputFile& f = *plan.file;
  if (known_start >= 0) {
    r.start = known_start;
  } else {
    auto s = NextLineStart(f, nominal_begin);
    if (!s.ok()) {
      r.io = s.TakeStatus();
      return r;
    }
    r.start = *s;
  }
  ByteBuffer& buf = ws.buf;
  size_t len = static_cast<size_t>(std::max<int64_t>(0, std::min(nominal_end, f.size()) - r.start));
  // Room for the segment plus its last row at the longest allowed length: the buffer never moves, so
  // dictionary views into it stay valid.
  size_t room = len + plan.opts->max_line_bytes + 2;
  if (buf.capacity() < room) {
    buf = ByteBuffer();
    buf.Reserve(room);
  }
  buf.Resize(len);
  if (len > 0) {
    r.io = f.ReadAt(r.start, buf.data(), len);
    if (!r.io.ok()) return r;
  }
  CsvTokenizer tok(plan.delim, plan.opts->max_field_bytes, plan.opts->max_line_bytes);
  tok.SetBuffer(buf.data(), buf.data() + len, r.start + static_cast<int64_t>(len) == f.size());
  auto offset_of = [&](const char* p) { return r.start + (p - buf.data()); };
  const size_t ncols = plan.ncols, cap = plan.group_rows;
  std::vector<FieldRef>& refs = ws.refs;
  if (refs.size() < ncols * cap) refs.resize(ncols * cap);
  ws.cols.resize(ncols);
  auto start_group = [&]() {
    for (size_t c = 0; c < ncols; ++c) {
      if (only != nullptr && !(*only)[c]) continue;
      ws.cols[c].Start(forced_types ? (*forced_types)[c] : ColumnType::kInt64, cap);
    }
  };
  start_group();
  GroupSpan group{r.start, r.start, 0, 0};
  auto flush = [&]() {
    size_t n = static_cast<size_t>(group.rows);
    group.end = offset_of(tok.pos());
    std::vector<EncodedChunk> chunks(ncols);
    for (size_t c = 0; c < ncols; ++c) {
      if (only != nullptr && !(*only)[c]) continue;
      chunks[c] = ws.cols[c].Encode(n, plan.opts->zstd_level);
    }
    r.groups.push_back(group);
    r.chunks.push_back(std::move(chunks));
    group = GroupSpan{group.end, group.end, 0, tok.lines()};
    start_group();
  };
  // Converts field (row, c); when a value does not fit the column's current type, moves the column to the
  // next candidate type and converts its earlier rows of this group again.
  auto put = [&](size_t c, size_t row) -> bool {
    ColumnScratch& col = ws.cols[c];
    const FieldRef& ref = refs[c * cap + row];
    if (col.Put(row, buf.data() + ref.offset, ref.len_flags & ~kEscapedBit, (ref.len_flags & kEscapedBit) != 0)) {
      return true;
    }
    if (forced_types != nullptr) return false;
    for (;;) {
      col.Start(NextCandidate(col.type), cap);
      size_t k = 0;
      for (; k <= row; ++k) {
        const FieldRef& rk = refs[c * cap + k];
        if (!col.Put(k, buf.data() + rk.offset, rk.len_flags & ~kEscapedBit, (rk.len_flags & kEscapedBit) != 0)) break;
      }
      if (k > row) return true;
    }
  };
  const char* error_pos = nullptr;
  for (;;) {
    if (offset_of(tok.pos()) >= nominal_end) break;
    CsvRowStatus st = tok.NextRow();
    if (st == CsvRowStatus::kRow) {
      const auto& fields = tok.fields();
      if (fields.size() != ncols) {
        r.has_error = true;
        r.error = RaggedMessage(ncols, fields.size());
        r.error_line = tok.row_line();
        error_pos = tok.row_start();
        break;
      }
      size_t row = static_cast<size_t>(group.rows);
      for (size_t c = 0; c < ncols; ++c) {
        refs[c * cap + row] = {static_cast<uint32_t>(fields[c].data - buf.data()),
                               fields[c].size | (fields[c].escaped ? kEscapedBit : 0)};
        if (only != nullptr && !(*only)[c]) continue;
        if (!put(c, row)) {
          r.io = Status::Internal("the input file changed during the import (a value no longer parses)");
          return r;
        }
      }
      ++r.rows;
      if (static_cast<size_t>(++group.rows) == cap) flush();
    } else if (st == CsvRowStatus::kNeedMore) {
      // The last row continues past the segment: read more of the file behind the buffer.
      size_t row_off = static_cast<size_t>(tok.row_start() - buf.data());
      int64_t have_end = r.start + static_cast<int64_t>(buf.size());
      size_t more = static_cast<size_t>(std::min<int64_t>(std::max<size_t>(size_t{1} << 20, buf.size() / 2),
                                                          f.size() - have_end));
      more = std::min(more, buf.capacity() - buf.size());
      if (more == 0) {
        r.io = Status::Internal("CSV segment buffer exhausted");
        return r;
      }
      size_t old = buf.size();
      buf.Resize(old + more);
      r.io = f.ReadAt(have_end, buf.data() + old, more);
      if (!r.io.ok()) return r;
      tok.SetBuffer(buf.data() + row_off, buf.data() + buf.size(), have_end + static_cast<int64_t>(more) == f.size());
    } else if (st == CsvRowStatus::kEnd) {
      break;
    } else {
      r.has_error = true;
      r.error = tok.error_message();
      r.error_line = tok.error_line();
      error_pos = tok.error_pos();
      break;
    }
  }
  r.end_pos = offset_of(tok.pos());
  r.lines = tok.lines();
  // UTF-8 of everything consumed (or up to the first error). Rows start after '\n', so no sequence is split.
  const char* check_end = r.has_error ? error_pos : tok.pos();
  int64_t bad = FindInvalidUtf8(buf.data(), static_cast<size_t>(check_end - buf.data()));
  if (bad >= 0) {
    r.has_error = true;
    r.error_line = std::count(buf.data(), buf.data() + bad, '\n');
    const char* line_start = buf.data() + bad;
    while (line_start > buf.data() && line_start[-1] != '\n') --line_start;
    r.error = "invalid UTF-8 at byte " + std::to_string(bad - (line_start - buf.data()) + 1) +
              " of the line (file offset " + std::to_string(r.start + bad) + "); save the file as UTF-8";
  }
  if (r.has_error) return r;  // the import fails: skip converting the rest
  if (group.rows > 0) flush();
  return r;
}

// The type of a column that holds chunks of types a and b (nullopt: no values seen yet).
std::optional<ColumnType> JoinTypes(std::optional<ColumnType> a, std::optional<ColumnType> b) {
  if (!a) return b;
  if (!b || *a == *b) return a;
  auto numeric = [](ColumnType t) { return t == ColumnType::kInt64 || t == ColumnType::kFloat64; };
  if (numeric(*a) && numeric(*b)) return ColumnType::kFloat64;
  return ColumnType::kString;
}

// Runs produce(i) for i in [0, n) on up to `threads` threads and hands results to consume(i, r) in order on
// the calling thread. Stops submitting after the first failing consume; waits for work in flight.
template <class R, class Produce, class Consume>
Status RunOrdered(size_t n, int threads, const Produce& produce, const Consume& consume) {
  std::deque<std::future<R>> inflight;
  size_t next = 0;
  auto fill = [&]() -> Status {
    while (next < n && inflight.size() < static_cast<size_t>(threads)) {
      size_t i = next++;
      try {
        inflight.push_back(std::async(std::launch::async, [&produce, i] { return produce(i); }));
      } catch (const std::exception& e) {
        return Status::Internal(std::string("cannot start a worker thread: ") + e.what());
      }
    }
    return Status::Ok();
  };
  Status st;
  for (size_t i = 0; i < n && st.ok(); ++i) {
    st = fill();
    if (!st.ok()) break;
    R r = inflight.front().get();
    inflight.pop_front();
    st = fill();
    if (!st.ok()) break;
    st = consume(i, r);
  }
  for (auto& f : inflight) f.wait();
  return st;
}

// Wraps a worker so that allocation failures and other exceptions become a Status in the result.
template <class R, class Fn>
R Guarded(const Fn& fn, Status R::*status_member) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    R r;
    r.*status_member = Status::ResourceExhausted("out of memory while importing");
    return r;
  } catch (const std::exception& e) {
    R r;
    r.*status_member = Status::Internal(std::string("import worker failed: ") + e.what());
    return r;
  }
}

Status LineError(int64_t line, const std::string& message) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + message)
      .WithDetail(ErrorDetail::Line(line, message));
}

struct Header {
  std::vector<std::string> names;
  int64_t data_start = 0;
  int64_t lines = 0;  // newlines consumed by the BOM/blank lines/header
  char delim = ',';
};

Result<Header> ReadHeader(const InputFile& f, const CsvOptions& opts) {
  if (f.size() == 0) return LineError(1, "the file is empty; expected a header row and data rows");
  ByteBuffer buf;
  size_t len = static_cast<size_t>(std::min<int64_t>(f.size(), 1 << 20));
  buf.Resize(len);
  RETURN_IF_ERROR(f.ReadAt(0, buf.data(), len));
  size_t bom = (len >= 3 && std::memcmp(buf.data(), "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
  Header h;
  h.delim = opts.delimiter;
  if (h.delim == 0) h.delim = DetectDelimiter(std::string_view(buf.data() + bom, std::min<size_t>(len - bom, 1 << 16)));
  if (h.delim == '"' || h.delim == '\n' || h.delim == '\r') {
    return Status::InvalidArgument("the delimiter cannot be a quote or a line break")
        .WithDetail(ErrorDetail::Field("delimiter", "cannot be a quote or a line break"));
  }
  CsvTokenizer tok(h.delim, opts.max_field_bytes, opts.max_line_bytes);
  tok.SetBuffer(buf.data() + bom, buf.data() + len, static_cast<int64_t>(len) == f.size());
  for (;;) {
    CsvRowStatus st = tok.NextRow();
    if (st == CsvRowStatus::kRow) break;
    if (st == CsvRowStatus::kEnd) return LineError(1, "the file is empty; expected a header row and data rows");
    if (st == CsvRowStatus::kError) return LineError(tok.error_line() + 1, tok.error_message());
    size_t row_off = static_cast<size_t>(tok.row_start() - buf.data());
    size_t old = buf.size();
    size_t more = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(old), f.size() - static_cast<int64_t>(old)));
    buf.Resize(old + more);
    RETURN_IF_ERROR(f.ReadAt(static_cast<int64_t>(old), buf.data() + old, more));
    tok.SetBuffer(buf.data() + row_off, buf.data() + buf.size(), static_cast<int64_t>(buf.size()) == f.size());
  }
  int64_t header_line = tok.row_line() + 1;
  int64_t bad = FindInvalidUtf8(buf.data() + bom, static_cast<size_t>(tok.pos() - (buf.data() + bom)));
  if (bad >= 0) {
    return LineError(header_line, "invalid UTF-8 in the header at byte " + std::to_string(bad + 1) +
                                      "; save the file as UTF-8");
  }
  std::string scratch;
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < tok.fields().size(); ++i) {
    std::string name(CsvTokenizer::Unescape(tok.fields()[i], &scratch));
    if (TrimBlanks(name).empty()) {
      return LineError(header_line, "column " + std::to_string(i + 1) + " of the header has an empty name");
    }
    auto [it, inserted] = seen.emplace(name, i);
    if (!inserted) {
      std::string msg = "duplicate column name '" + name + "' (columns " + std::to_string(it->second + 1) + " and " +
                        std::to_string(i + 1) + " of the header)";
      return Status::InvalidArgument(msg).WithDetail(ErrorDetail::Column(name, msg));
    }
    h.names.push_back(std::move(name));
  }
  h.data_start = tok.pos() - buf.data();
  h.lines = tok.lines();
  return h;
}

Result<ImportResult> Import(const std::string& input_path, const std::string& output_path, const CsvOptions& opts,
                            const ProgressFn& progress, const CancelFn& cancel) {
  InputFile file;
  RETURN_IF_ERROR(file.Open(input_path));
  ASSIGN_OR_RETURN(Header header, ReadHeader(file, opts));
  ImportPlan plan;
  plan.file = &file;
  plan.opts = &opts;
  plan.delim = header.delim;
  plan.ncols = header.names.size();
  plan.data_start = header.data_start;
  // At most ~8M buffered fields per row group, so very wide files use shorter groups.
  plan.group_rows = static_cast<size_t>(
      std::clamp<int64_t>(static_cast<int64_t>((size_t{8} << 20) / plan.ncols), 1, kLcolRowsPerGroup));
  int threads = opts.num_threads > 0 ? opts.num_threads
                                     : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
  auto cancelled = [&] { return cancel && cancel(); };
  auto report = [&](double f) {
    if (progress) progress(std::clamp(f, 0.0, 1.0));
  };
  const int64_t size = file.size();
  const int64_t body = size - plan.data_start;
  ASSIGN_OR_RETURN(auto writer, DatasetWriter::Create(output_path, header.names));

  // One pass: segments are tokenized, validated, converted and compressed in parallel, each from the first
  // line start after its nominal offset; results are joined in file order on this thread. A segment whose
  // start guess was wrong (a quoted field spans the boundary) is redone from the true row boundary.
  int64_t seg_bytes = static_cast<int64_t>(std::max<size_t>(opts.segment_bytes, 1024));
  size_t nseg = body <= 0 ? 0 : static_cast<size_t>((body + seg_bytes - 1) / seg_bytes);
  auto nominal = [&](size_t k) { return k >= nseg ? size : plan.data_start + static_cast<int64_t>(k) * seg_bytes; };
  std::vector<std::optional<ColumnType>> joined(plan.ncols);
  std::vector<GroupSpan> groups;
  int64_t rows = 0;
  int64_t expected_start = plan.data_start;
  int64_t line_base = header.lines;  // newlines before expected_start
  WorkspacePool pool;
  auto run_segment = [&](int64_t known_start, int64_t begin, int64_t end, const std::vector<ColumnType>* forced,
                         const std::vector<uint8_t>* only) {
    return Guarded<SegmentResult>(
        [&] {
          std::unique_ptr<Workspace> ws = pool.Take();
          SegmentResult r = ProcessSegment(plan, *ws, known_start, begin, end, forced, only);
          pool.Give(std::move(ws));
          return r;
        },
        &SegmentResult::io);
  };
  auto process = [&](size_t k) {
    return run_segment(k == 0 ? plan.data_start : -1, nominal(k), nominal(k + 1), nullptr, nullptr);
  };
  Status st = RunOrdered<SegmentResult>(nseg, threads, process, [&](size_t k, SegmentResult& r) -> Status {
    if (cancelled()) return Status::Cancelled("import cancelled");
    if (r.io.ok() && r.start != expected_start) {
      r = run_segment(expected_start, nominal(k), nominal(k + 1), nullptr, nullptr);
    }
    if (r.has_error) return LineError(line_base + r.error_line + 1, r.error);
    RETURN_IF_ERROR(r.io);
    for (size_t g = 0; g < r.groups.size(); ++g) {
      for (size_t c = 0; c < plan.ncols; ++c) {
        const EncodedChunk& ch = r.chunks[g][c];
        if (!ch.all_null) joined[c] = JoinTypes(joined[c], ch.physical);
      }
      RETURN_IF_ERROR(writer->AppendRowGroup(r.groups[g].rows, r.chunks[g]));
      GroupSpan span = r.groups[g];
      span.first_line += line_base + 1;
      groups.push_back(span);
    }
    rows += r.rows;
    line_base += r.lines;
    expected_start = r.end_pos;
    report(0.95 * static_cast<double>(expected_start - plan.data_start) /
           static_cast<double>(std::max<int64_t>(body, 1)));
    return Status::Ok();
  });
  RETURN_IF_ERROR(st);
  if (rows == 0) return LineError(line_base + 1, "the file has a header row but no data rows");

  std::vector<ColumnType> types(plan.ncols);
  for (size_t c = 0; c < plan.ncols; ++c) types[c] = joined[c].value_or(ColumnType::kString);

  // Row groups whose chunks were encoded in a narrower type than the column's final one (say integers in
  // a column that later turned out to hold text) are converted again from the input.
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<uint8_t> redo(plan.ncols, 0);
    bool any = false;
    for (size_t c = 0; c < plan.ncols; ++c) {
      if (!writer->ChunkFits(g, c, types[c])) redo[c] = 1, any = true;
    }
    if (!any) continue;
    if (cancelled()) return Status::Cancelled("import cancelled");
    SegmentResult again = run_segment(groups[g].begin, groups[g].begin, groups[g].end, &types, &redo);
    RETURN_IF_ERROR(again.io);
    if (again.has_error || again.groups.size() != 1 || again.groups[0].rows != groups[g].rows) {
      return Status::Internal("the input file changed during the import (near line " +
                              std::to_string(groups[g].first_line) + ")");
    }
    for (size_t c = 0; c < plan.ncols; ++c) {
      if (redo[c]) RETURN_IF_ERROR(writer->ReplaceChunk(g, c, std::move(again.chunks[0][c])));
    }
  }
  if (cancelled()) return Status::Cancelled("import cancelled");
  ASSIGN_OR_RETURN(int64_t out_bytes, writer->Finish(types));
  ImportResult result;
  result.rows = rows;
  result.input_bytes = size;
  result.output_bytes = out_bytes;
  for (size_t c = 0; c < plan.ncols; ++c) {
    result.columns.push_back(ColumnInfo{header.names[c], types[c], writer->stats()[c].missing});
  }
  report(1.0);
  return result;
}

}  // namespace

Result<ImportResult> ImportCsvFile(const std::string& input_path, const std::string& output_path,
                                   const CsvOptions& options, const ProgressFn& progress, const CancelFn& cancel) {
  if (options.max_field_bytes == 0 || options.max_line_bytes == 0) {
    return Status::InvalidArgument("max_field_bytes and max_line_bytes must be positive");
  }
  try {
    return Import(input_path, output_path, options, progress, cancel);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while importing " + input_path);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("import failed: ") + e.what());
  }
}

}  // namespace lathe
