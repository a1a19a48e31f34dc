// Dataset files: lathe's immutable columnar file format (".lcol", specified in docs/formats.md).
//
// DatasetFile reads one: the file is memory-mapped; Open() verifies magic numbers at both ends, the format
// version and the footer checksum, and validates every chunk location against the file size. Chunk
// checksums are verified when a chunk is decoded. Any truncation or corruption is reported as kDataLoss,
// never a crash. A DatasetFile is immutable after Open() and safe for concurrent reads from many threads.
//
// WriteDatasetFile writes a Table atomically: a temp file in the same directory, fsync, rename, fsync of
// the directory. On error nothing is left at output_path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/lcol_format.h"
#include "data/table.h"

namespace lathe {

struct ColumnInfo {
  std::string name;
  ColumnType type = ColumnType::kString;
  int64_t missing = 0;
};

class DatasetFile {
 public:
  static Result<std::unique_ptr<DatasetFile>> Open(const std::string& path);
  // The same for an open descriptor (e.g. a decrypted blob in memory, store/blob_store.h PlainFile); the
  // DatasetFile keeps its own duplicate, so the caller may close `fd` afterwards. `name` is for messages.
  static Result<std::unique_ptr<DatasetFile>> OpenFd(int fd, const std::string& name);
  ~DatasetFile();
  DatasetFile(const DatasetFile&) = delete;
  DatasetFile& operator=(const DatasetFile&) = delete;

  int64_t num_rows() const { return num_rows_; }
  const std::vector<ColumnInfo>& columns() const { return columns_; }
  int64_t file_bytes() const { return static_cast<int64_t>(size_); }
  // {"rows": N, "columns": [{"name","type","count","missing", "min","max" (numbers; datetimes as RFC 3339),
  //  "distinct","distinct_approximate" (strings), "true_count" (booleans)}]}
  Json StatsJson() const;
  Result<Table> ReadAll() const;
  // Rows [offset, offset+limit) clipped to the table; decodes only the row groups that overlap the window.
  // kInvalidArgument for a negative offset or limit.
  Result<Table> ReadRows(int64_t offset, int64_t limit) const;

  // Row groups as stored (1..kLcolRowsPerGroup rows each), for readers that stream a file one group at a time
  // without building a Table (the profiler): no copies, and the caller's buffers are reused group after
  // group.
  int64_t num_groups() const { return static_cast<int64_t>(groups_.size()); }
  int64_t group_rows(int64_t g) const { return groups_[static_cast<size_t>(g)].rows; }
  // Metadata of chunk (g, column); g < num_groups(), column < columns().size().
  const ChunkMeta& chunk_meta(int64_t g, size_t column) const {
    return groups_[static_cast<size_t>(g)].chunks[column];
  }
  // Decodes every column chunk of row group g into (*chunks)[c] (resized to the column count; the buffers of
  // earlier calls are reused), then releases the group's mapped pages. String dictionaries are views into the
  // chunk payloads: valid while this file is open and (*chunks)[c] is not decoded into again.
  // kInvalidArgument if g is out of range; kDataLoss if a chunk is corrupt.
  Status DecodeGroup(int64_t g, std::vector<DecodedChunk>* chunks) const;

 private:
  DatasetFile() = default;
  Status MapAndParse(const std::string& path);
  Status Parse();
  void ReleaseMappedRange(uint64_t offset, uint64_t size) const;

  struct RowGroup {
    int64_t first_row = 0;
    int64_t rows = 0;
    std::vector<ChunkMeta> chunks;
  };
  int fd_ = -1;
  const char* data_ = nullptr;
  size_t size_ = 0;
  int64_t num_rows_ = 0;
  std::vector<ColumnInfo> columns_;
  std::vector<Json> stats_;
  std::vector<RowGroup> groups_;
};

Status WriteDatasetFile(const Table& table, const std::string& output_path);

// Streams row groups into a new dataset file. Column types are fixed only at Finish(), so a producer that
// infers types while it streams (the CSV importer) can append chunks encoded in a narrower type and replace
// the few that do not fit. Not thread-safe; one writer per file. Destroying a writer that was not
// successfully finished removes its temp file.
class DatasetWriter {
 public:
  static Result<std::unique_ptr<DatasetWriter>> Create(const std::string& output_path,
                                                       std::vector<std::string> column_names);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // One encoded chunk per column, in column order; 1..kLcolRowsPerGroup rows. Chunk bytes are released.
  Status AppendRowGroup(int64_t rows, std::vector<EncodedChunk>& chunks);
  // Encodes a whole table (columns in the writer's order, each of one type for the whole file) as row groups
  // of up to kLcolRowsPerGroup rows. kInvalidArgument for a malformed table or a different column count.
  Status AppendTable(const Table& table);
  // True if chunk (group, column) can be read as `type` without re-encoding: same type, all missing, or
  // integers in a float column.
  bool ChunkFits(size_t group, size_t column, ColumnType type) const;
  // Writes a re-encoded chunk and points the footer at it (the old bytes stay in the file, unreferenced).
  Status ReplaceChunk(size_t group, size_t column, EncodedChunk chunk);
  // Writes footer and trailer with the final column types, fsyncs, renames into place. Returns the file size.
  // kInternal if a chunk does not fit its column's type.
  Result<int64_t> Finish(const std::vector<ColumnType>& types);

  size_t num_groups() const { return groups_.size(); }
  // Per-column statistics; complete after Finish().
  const std::vector<ColumnStats>& stats() const { return stats_; }

 private:
  DatasetWriter() = default;
  Status WriteAll(const char* data, size_t size);
  void StartWriteback();

  struct ChunkRecord {
    ChunkMeta meta;
    ColumnStats stats;  // without dictionary hashes (those go to distinct_ right away)
    ColumnType physical = ColumnType::kString;
    bool all_null = false;
  };
  struct GroupRecord {
    int64_t rows = 0;
    std::vector<ChunkRecord> chunks;
  };
  ChunkRecord Record(EncodedChunk& chunk, size_t column);

  std::string output_path_;
  std::string temp_path_;
  int fd_ = -1;
  bool finished_ = false;
  uint64_t offset_ = 0;
  uint64_t writeback_offset_ = 0;  // bytes before this were handed to sync_file_range
  int64_t num_rows_ = 0;
  std::vector<std::string> names_;
  std::vector<ColumnStats> stats_;
  std::vector<DistinctCounter> distinct_;
  std::vector<GroupRecord> groups_;
};

}  // namespace lathe
