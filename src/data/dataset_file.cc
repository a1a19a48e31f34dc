#include "data/dataset_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "data/checksum.h"

namespace lathe {

namespace {

Status Corrupt(const std::string& what) { return Status::DataLoss("dataset file is corrupt: " + what); }

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

void PutU32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutU64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

// ---------------------------------------------------------------- writer

Result<std::unique_ptr<DatasetWriter>> DatasetWriter::Create(const std::string& output_path,
                                                             std::vector<std::string> column_names) {
  std::unique_ptr<DatasetWriter> w(new DatasetWriter());
  w->output_path_ = output_path;
  std::string tmpl = output_path + ".tmp-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd < 0) return Status::Internal(Errno("cannot create a temp file next to " + output_path));
  w->fd_ = fd;
  w->temp_path_ = buf.data();
  w->names_ = std::move(column_names);
  w->stats_.resize(w->names_.size());
  w->distinct_.resize(w->names_.size());
  char header[kLcolHeaderBytes] = {};
  std::memcpy(header, kLcolMagic, 8);
  PutU32(header + 8, kLcolVersion);
  RETURN_IF_ERROR(w->WriteAll(header, sizeof(header)));
  return w;
}

DatasetWriter::~DatasetWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status DatasetWriter::WriteAll(const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Internal(Errno("writing " + temp_path_));
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset_ += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

DatasetWriter::ChunkRecord DatasetWriter::Record(EncodedChunk& chunk, size_t column) {
  ChunkRecord rec;
  rec.meta = chunk.meta;
  rec.physical = chunk.physical;
  rec.all_null = chunk.all_null;
  if (!chunk.all_null && chunk.physical == ColumnType::kString) {
    for (uint64_t h : chunk.stats.dict_hashes) distinct_[column].Add(h);
  }
  rec.stats = std::move(chunk.stats);
  std::vector<uint64_t>().swap(rec.stats.dict_hashes);
  std::string().swap(chunk.bytes);
  return rec;
}

void DatasetWriter::StartWriteback() {
  // Asks the kernel to start writing what we have so far, so the final fsync has little left to wait for.
  // Advisory only: errors are ignored here and fsync in Finish() still decides durability.
  constexpr uint64_t kWritebackBytes = uint64_t{8} << 20;
  if (offset_ - writeback_offset_ < kWritebackBytes) return;
#if defined(__linux__)
  ::sync_file_range(fd_, static_cast<off64_t>(writeback_offset_), static_cast<off64_t>(offset_ - writeback_offset_),
                    SYNC_FILE_RANGE_WRITE);
#endif
  writeback_offset_ = offset_;
}

Status DatasetWriter::AppendRowGroup(int64_t rows, std::vector<EncodedChunk>& chunks) {
  if (finished_ || fd_ < 0) return Status::FailedPrecondition("dataset writer is already finished");
  if (chunks.size() != names_.size()) return Status::Internal("row group has the wrong number of chunks");
  if (rows <= 0 || rows > kLcolRowsPerGroup) return Status::Internal("row group size out of range");
  GroupRecord g;
  g.rows = rows;
  for (size_t c = 0; c < chunks.size(); ++c) {
    chunks[c].meta.offset = offset_;
    RETURN_IF_ERROR(WriteAll(chunks[c].bytes.data(), chunks[c].bytes.size()));
    g.chunks.push_back(Record(chunks[c], c));
  }
  groups_.push_back(std::move(g));
  num_rows_ += rows;
  StartWriteback();
  return Status::Ok();
}

bool DatasetWriter::ChunkFits(size_t group, size_t column, ColumnType type) const {
  const ChunkRecord& r = groups_[group].chunks[column];
  return r.all_null || r.physical == type || (r.physical == ColumnType::kInt64 && type == ColumnType::kFloat64);
}

Status DatasetWriter::ReplaceChunk(size_t group, size_t column, EncodedChunk chunk) {
  if (finished_ || fd_ < 0) return Status::FailedPrecondition("dataset writer is already finished");
  if (group >= groups_.size() || column >= names_.size()) return Status::Internal("no such chunk");
  chunk.meta.offset = offset_;
  RETURN_IF_ERROR(WriteAll(chunk.bytes.data(), chunk.bytes.size()));
  groups_[group].chunks[column] = Record(chunk, column);
  return Status::Ok();
}

Result<int64_t> DatasetWriter::Finish(const std::vector<ColumnType>& types) {
  if (finished_ || fd_ < 0) return Status::FailedPrecondition("dataset writer is already finished");
  if (types.size() != names_.size()) return Status::Internal("wrong number of column types");
  stats_.assign(names_.size(), ColumnStats());
  Json groups = Json::array();
  for (size_t g = 0; g < groups_.size(); ++g) {
    Json chunks = Json::array();
    for (size_t c = 0; c < names_.size(); ++c) {
      ChunkRecord& r = groups_[g].chunks[c];
      if (!ChunkFits(g, c, types[c])) return Status::Internal("a chunk does not fit its column type");
      if (!r.all_null && r.physical != types[c]) r.meta.encoding = ChunkEncoding::kDecimal, r.meta.scale = 0;
      stats_[c].Merge(types[c], r.stats, nullptr);
      chunks.push_back(r.meta.ToJson());
    }
    groups.push_back({{"rows", groups_[g].rows}, {"chunks", std::move(chunks)}});
  }
  Json cols = Json::array();
  for (size_t c = 0; c < names_.size(); ++c) {
    ColumnType t = types[c];
    cols.push_back({{"name", names_[c]},
                    {"type", ColumnTypeName(t)},
                    {"missing", stats_[c].missing},
                    {"stats", stats_[c].ToJson(t, t == ColumnType::kString ? &distinct_[c] : nullptr)}});
  }
  Json footer = {{"format", "lathe-columnar"}, {"version", kLcolVersion}, {"num_rows", num_rows_},
                 {"columns", std::move(cols)},  {"row_groups", std::move(groups)}};
  std::string text;
  try {
    text = footer.dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot serialize the dataset footer: ") + e.what());
  }
  uint64_t footer_offset = offset_;
  RETURN_IF_ERROR(WriteAll(text.data(), text.size()));
  char trailer[kLcolTrailerBytes];
  PutU64(trailer, footer_offset);
  PutU64(trailer + 8, text.size());
  PutU32(trailer + 16, Crc32(text.data(), text.size()));
  PutU32(trailer + 20, kLcolVersion);
  std::memcpy(trailer + 24, kLcolMagic, 8);
  RETURN_IF_ERROR(WriteAll(trailer, sizeof(trailer)));
  if (::fsync(fd_) != 0) return Status::Internal(Errno("fsync " + temp_path_));
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return Status::Internal(Errno("close " + temp_path_));
  if (::rename(temp_path_.c_str(), output_path_.c_str()) != 0) {
    return Status::Internal(Errno("rename " + temp_path_ + " to " + output_path_));
  }
  finished_ = true;
  std::string dir = std::filesystem::path(output_path_).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return static_cast<int64_t>(offset_);
}

namespace {

Status CheckTable(const Table& table) {
  for (const Column& c : table.columns) {
    if (static_cast<int64_t>(c.valid.size()) != table.num_rows) {
      return Status::InvalidArgument("column '" + c.name + "' has " + std::to_string(c.valid.size()) +
                                     " rows, the table has " + std::to_string(table.num_rows));
    }
    size_t need = static_cast<size_t>(table.num_rows);
    bool ok = true;
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: ok = c.i64.size() == need; break;
      case ColumnType::kFloat64: ok = c.f64.size() == need; break;
      case ColumnType::kBool: ok = c.b.size() == need; break;
      case ColumnType::kString:
        ok = c.codes.size() == need;
        for (size_t i = 0; ok && i < need; ++i) {
          if (c.valid[i] && (c.codes[i] < 0 || static_cast<size_t>(c.codes[i]) >= c.dict.size())) ok = false;
        }
        break;
    }
    if (!ok) return Status::InvalidArgument("column '" + c.name + "' has inconsistent value vectors");
  }
  return Status::Ok();
}

}  // namespace

Status DatasetWriter::AppendTable(const Table& table) {
  RETURN_IF_ERROR(CheckTable(table));
  if (table.columns.size() != names_.size()) {
    return Status::InvalidArgument("table has " + std::to_string(table.columns.size()) + " columns, the file " +
                                   std::to_string(names_.size()));
  }
  std::vector<int32_t> local_codes;
  std::vector<std::string_view> local_dict;
  std::vector<int32_t> remap;
  for (int64_t start = 0; start < table.num_rows; start += kLcolRowsPerGroup) {
    size_t n = static_cast<size_t>(std::min<int64_t>(kLcolRowsPerGroup, table.num_rows - start));
    size_t s = static_cast<size_t>(start);
    std::vector<EncodedChunk> chunks;
    for (const Column& c : table.columns) {
      ChunkInput in;
      in.type = c.type;
      in.rows = n;
      in.valid = c.valid.data() + s;
      switch (c.type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime: in.i64 = c.i64.data() + s; break;
        case ColumnType::kFloat64: in.f64 = c.f64.data() + s; break;
        case ColumnType::kBool: in.b = c.b.data() + s; break;
        case ColumnType::kString: {
          // A chunk-local dictionary of the values used, in order of first appearance.
          remap.assign(c.dict.size(), -1);
          local_dict.clear();
          local_codes.assign(n, 0);
          for (size_t i = 0; i < n; ++i) {
            if (!c.valid[s + i]) continue;
            int32_t g = c.codes[s + i];
            if (remap[static_cast<size_t>(g)] < 0) {
              remap[static_cast<size_t>(g)] = static_cast<int32_t>(local_dict.size());
              local_dict.push_back(c.dict[static_cast<size_t>(g)]);
            }
            local_codes[i] = remap[static_cast<size_t>(g)];
          }
          in.codes = local_codes.data();
          in.dict = local_dict.data();
          in.dict_size = local_dict.size();
          break;
        }
      }
      chunks.push_back(EncodeChunk(in, 3));
    }
    RETURN_IF_ERROR(AppendRowGroup(static_cast<int64_t>(n), chunks));
  }
  return Status::Ok();
}

Status WriteDatasetFile(const Table& table, const std::string& output_path) {
  RETURN_IF_ERROR(CheckTable(table));
  std::vector<std::string> names;
  std::vector<ColumnType> types;
  for (const Column& c : table.columns) {
    names.push_back(c.name);
    types.push_back(c.type);
  }
  ASSIGN_OR_RETURN(auto writer, DatasetWriter::Create(output_path, names));
  RETURN_IF_ERROR(writer->AppendTable(table));
  return writer->Finish(types).status();
}

// ---------------------------------------------------------------- reader

DatasetFile::~DatasetFile() {
  if (data_ != nullptr && size_ > 0) ::munmap(const_cast<char*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<DatasetFile>> DatasetFile::Open(const std::string& path) {
  std::unique_ptr<DatasetFile> f(new DatasetFile());
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd_ < 0) {
    if (errno == ENOENT) return Status::NotFound("dataset file " + path + " does not exist");
    return Status::Internal(Errno("open " + path));
  }
  RETURN_IF_ERROR(f->MapAndParse(path));
  return f;
}

Result<std::unique_ptr<DatasetFile>> DatasetFile::OpenFd(int fd, const std::string& name) {
  std::unique_ptr<DatasetFile> f(new DatasetFile());
  f->fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (f->fd_ < 0) return Status::Internal(Errno("dup " + name));
  RETURN_IF_ERROR(f->MapAndParse(name));
  return f;
}

Status DatasetFile::MapAndParse(const std::string& path) {
  DatasetFile* f = this;
  struct stat st;
  if (::fstat(f->fd_, &st) != 0) return Status::Internal(Errno("stat " + path));
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ < kLcolHeaderBytes + kLcolTrailerBytes) {
    return Corrupt("file is " + std::to_string(f->size_) + " bytes, too short to be a dataset file (truncated?)");
  }
  void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, f->fd_, 0);
  if (m == MAP_FAILED) return Status::Internal(Errno("mmap " + path));
  f->data_ = static_cast<const char*>(m);
  Status s = f->Parse();
  if (!s.ok()) return s.Annotate(path);
  return Status::Ok();
}

Status DatasetFile::Parse() {
  if (std::memcmp(data_, kLcolMagic, 8) != 0) return Corrupt("bad magic number at the start (not a dataset file)");
  if (GetU32(data_ + 8) != kLcolVersion) {
    return Corrupt("unsupported format version " + std::to_string(GetU32(data_ + 8)));
  }
  if (GetU32(data_ + 12) != 0) return Corrupt("reserved header bytes are not zero");
  const char* t = data_ + size_ - kLcolTrailerBytes;
  if (std::memcmp(t + 24, kLcolMagic, 8) != 0) return Corrupt("bad magic number at the end (truncated file?)");
  if (GetU32(t + 20) != kLcolVersion) return Corrupt("trailer version does not match the header");
  uint64_t footer_offset = GetU64(t);
  uint64_t footer_size = GetU64(t + 8);
  uint64_t footer_end = size_ - kLcolTrailerBytes;
  if (footer_offset < kLcolHeaderBytes || footer_offset > footer_end || footer_size != footer_end - footer_offset ||
      footer_size > kLcolMaxFooterBytes) {
    return Corrupt("footer location is out of range (truncated file?)");
  }
  std::string_view footer_text(data_ + footer_offset, footer_size);
  if (Crc32(footer_text.data(), footer_text.size()) != GetU32(t + 16)) return Corrupt("footer checksum mismatch");
  auto parsed = ParseJson(footer_text, 16);
  if (!parsed.ok()) return Corrupt("footer is not valid JSON");
  const Json& j = *parsed;
  try {
    if (!j.is_object() || j.value("format", "") != "lathe-columnar") return Corrupt("footer format tag missing");
    const Json& nr = j.at("num_rows");
    if (!nr.is_number_integer() || nr.get<int64_t>() < 0) return Corrupt("bad num_rows");
    num_rows_ = nr.get<int64_t>();
    const Json& cols = j.at("columns");
    if (!cols.is_array()) return Corrupt("columns is not an array");
    for (const Json& c : cols) {
      if (!c.is_object() || !c.at("name").is_string() || !c.at("type").is_string()) return Corrupt("bad column entry");
      auto type = ParseColumnType(c.at("type").get<std::string>());
      if (!type.ok()) return Corrupt("unknown column type");
      ColumnInfo info;
      info.name = c.at("name").get<std::string>();
      info.type = *type;
      if (c.contains("missing") && c["missing"].is_number_integer()) info.missing = c["missing"].get<int64_t>();
      columns_.push_back(std::move(info));
      stats_.push_back(c.contains("stats") && c["stats"].is_object() ? c["stats"] : Json::object());
    }
    const Json& groups = j.at("row_groups");
    if (!groups.is_array()) return Corrupt("row_groups is not an array");
    int64_t first = 0;
    for (const Json& g : groups) {
      RowGroup rg;
      if (!g.is_object() || !g.at("rows").is_number_integer()) return Corrupt("bad row group entry");
      rg.rows = g.at("rows").get<int64_t>();
      if (rg.rows <= 0 || rg.rows > kLcolRowsPerGroup) return Corrupt("row group size out of range");
      rg.first_row = first;
      first += rg.rows;
      const Json& chunks = g.at("chunks");
      if (!chunks.is_array() || chunks.size() != columns_.size()) return Corrupt("row group has the wrong chunk count");
      for (const Json& cj : chunks) {
        ASSIGN_OR_RETURN(ChunkMeta m, ChunkMeta::FromJson(cj));
        if (m.offset < kLcolHeaderBytes || m.offset > footer_offset || m.size > footer_offset - m.offset) {
          return Corrupt("chunk lies outside the data area");
        }
        if (m.raw_size > static_cast<uint64_t>(rg.rows) * 9 + 8 + static_cast<uint64_t>(m.dict_bytes) +
                             static_cast<uint64_t>(m.dict_count) * 4) {
          return Corrupt("chunk payload size implausible");
        }
        rg.chunks.push_back(m);
      }
      groups_.push_back(std::move(rg));
    }
    if (first != num_rows_) return Corrupt("row groups do not add up to num_rows");
  } catch (const std::exception&) {
    return Corrupt("footer has missing or mistyped fields");
  }
  return Status::Ok();
}

Json DatasetFile::StatsJson() const {
  Json cols = Json::array();
  for (size_t c = 0; c < columns_.size(); ++c) {
    Json j = stats_[c];
    j["name"] = columns_[c].name;
    j["type"] = ColumnTypeName(columns_[c].type);
    cols.push_back(std::move(j));
  }
  return {{"rows", num_rows_}, {"columns", std::move(cols)}};
}

Result<Table> DatasetFile::ReadAll() const { return ReadRows(0, num_rows_); }

// The chunk's bytes were copied out by decoding: drop this process's mapping of the whole pages they cover
// so scanning a large file keeps resident memory at one row group, not the file size (the kernel's page
// cache keeps the data; a later read faults it back in cheaply).
void DatasetFile::ReleaseMappedRange(uint64_t offset, uint64_t size) const {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = (offset + page - 1) / page * page;
  const uint64_t last = (offset + size) / page * page;
  if (last > first) {
    ::madvise(const_cast<char*>(data_) + first, last - first, MADV_DONTNEED);
  }
}

Status DatasetFile::DecodeGroup(int64_t g, std::vector<DecodedChunk>* chunks) const {
  if (g < 0 || g >= num_groups())
    return Status::InvalidArgument("row group " + std::to_string(g) + " out of range");
  const RowGroup& rg = groups_[static_cast<size_t>(g)];
  chunks->resize(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    const ChunkMeta& m = rg.chunks[c];
    Status s = DecodeChunk(std::string_view(data_ + m.offset, m.size), m, columns_[c].type,
                           static_cast<size_t>(rg.rows), &(*chunks)[c]);
    if (!s.ok()) {
      return s.Annotate("column '" + columns_[c].name + "', rows " + std::to_string(rg.first_row) + "-" +
                        std::to_string(rg.first_row + rg.rows - 1));
    }
  }
  // One madvise per run of adjacent chunks (a group's chunks are normally written back to back) instead of
  // one per chunk: each call flushes the TLB. Views into uncompressed payloads stay valid: the pages are read
  // again from the file if touched.
  uint64_t run_begin = 0, run_end = 0;
  for (const ChunkMeta& m : rg.chunks) {
    if (m.size == 0) continue;
    if (m.offset != run_end) {
      if (run_end > run_begin) ReleaseMappedRange(run_begin, run_end - run_begin);
      run_begin = m.offset;
    }
    run_end = m.offset + m.size;
  }
  if (run_end > run_begin) ReleaseMappedRange(run_begin, run_end - run_begin);
  return Status::Ok();
}

Result<Table> DatasetFile::ReadRows(int64_t offset, int64_t limit) const {
  if (offset < 0 || limit < 0) {
    return Status::InvalidArgument("row window must have a non-negative offset and limit");
  }
  int64_t begin = std::min(offset, num_rows_);
  int64_t end = begin + std::min(limit, num_rows_ - begin);
  Table t;
  t.num_rows = end - begin;
  size_t n = static_cast<size_t>(t.num_rows);
  t.columns.resize(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    Column& col = t.columns[c];
    col.name = columns_[c].name;
    col.type = columns_[c].type;
    col.valid.reserve(n);
    switch (col.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: col.i64.reserve(n); break;
      case ColumnType::kFloat64: col.f64.reserve(n); break;
      case ColumnType::kBool: col.b.reserve(n); break;
      case ColumnType::kString: col.codes.reserve(n); break;
    }
  }
  if (n == 0) return t;
  std::vector<std::unordered_map<std::string, int32_t>> dict_index(columns_.size());
  DecodedChunk dec;
  std::vector<int32_t> remap;
  for (const RowGroup& g : groups_) {
    int64_t gb = std::max(begin, g.first_row), ge = std::min(end, g.first_row + g.rows);
    if (gb >= ge) continue;
    size_t lo = static_cast<size_t>(gb - g.first_row), hi = static_cast<size_t>(ge - g.first_row);
    for (size_t c = 0; c < columns_.size(); ++c) {
      const ChunkMeta& m = g.chunks[c];
      Column& col = t.columns[c];
      Status s = DecodeChunk(std::string_view(data_ + m.offset, m.size), m, col.type, static_cast<size_t>(g.rows), &dec);
      if (!s.ok()) {
        return s.Annotate("column '" + col.name + "', rows " + std::to_string(g.first_row) + "-" +
                          std::to_string(g.first_row + g.rows - 1));
      }
      col.valid.insert(col.valid.end(), dec.valid.begin() + lo, dec.valid.begin() + hi);
      switch (col.type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime: col.i64.insert(col.i64.end(), dec.i64.begin() + lo, dec.i64.begin() + hi); break;
        case ColumnType::kFloat64: col.f64.insert(col.f64.end(), dec.f64.begin() + lo, dec.f64.begin() + hi); break;
        case ColumnType::kBool: col.b.insert(col.b.end(), dec.b.begin() + lo, dec.b.begin() + hi); break;
        case ColumnType::kString: {
          // Merge the chunk dictionary into the column's, in order of first use in the window.
          remap.assign(dec.dict.size(), -1);
          auto& index = dict_index[c];
          for (size_t i = lo; i < hi; ++i) {
            if (!dec.valid[i]) {
              col.codes.push_back(0);
              continue;
            }
            size_t k = static_cast<size_t>(dec.codes[i]);
            if (remap[k] < 0) {
              std::string key(dec.dict[k]);
              auto it = index.find(key);
              if (it == index.end()) {
                int32_t code = static_cast<int32_t>(col.dict.size());
                col.dict.push_back(key);
                index.emplace(std::move(key), code);
                remap[k] = code;
              } else {
                remap[k] = it->second;
              }
            }
            col.codes.push_back(remap[k]);
          }
          break;
        }
      }
      // The chunk's bytes are no longer needed (string views into them were copied just above).
      ReleaseMappedRange(m.offset, m.size);
    }
  }
  return t;
}

}  // namespace lathe
