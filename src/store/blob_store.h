// BlobStore: immutable bytes addressed by the SHA-256 of their content, under one directory.
//
//   Put(bytes)         stores zstd-compressed bytes (models, artifacts); Get() returns the original bytes.
//   AdoptFile(path)    moves an already-compact file (e.g. a columnar dataset file, zstd inside) into the
//                      store uncompressed so it can be memory-mapped via PathOf().
//
// Every write goes to a temp file in the same directory, is fsynced, then renamed into place, and the
// directory is fsynced: a crash leaves either the whole blob or nothing. Storing the same content twice is
// a no-op. Ids look like "z-<64 hex>" (compressed) or "r-<64 hex>" (raw). Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace lathe {

class BlobStore {
 public:
  static Result<std::unique_ptr<BlobStore>> Open(const std::string& dir);

  Result<std::string> Put(std::string_view bytes);
  Result<std::string> AdoptFile(const std::string& path);
  // Returns the original bytes; a blob whose content no longer matches its address is kDataLoss.
  Result<std::string> Get(const std::string& id) const;
  // Filesystem path of a raw blob (AdoptFile), for memory-mapping.
  Result<std::string> PathOf(const std::string& id) const;
  bool Exists(const std::string& id) const;
  // Deletes a blob's file (a missing blob is not an error). The caller checks that nothing references it.
  Status Remove(const std::string& id);
  // A fresh temp path inside the store's directory (same filesystem, so AdoptFile is a rename).
  std::string TempPath(std::string_view hint) const;

 private:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  Result<std::string> PathFor(const std::string& id) const;
  std::string dir_;
};

// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of the directory.
Status WriteFileAtomic(const std::string& path, std::string_view bytes);
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 34);

}  // namespace lathe
