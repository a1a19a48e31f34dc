// BlobStore: immutable bytes addressed by the SHA-256 of their content, under one directory.
//
//   Put(bytes)         stores zstd-compressed bytes (models, artifacts); Get() returns the original bytes.
//   AdoptFile(path)    takes an already-compact file (e.g. a columnar dataset file, zstd inside) into the
//                      store uncompressed so it can be memory-mapped via OpenPlain().
//
// Encryption at rest: with a Keyring, every blob written is encrypted (docs/formats.md, "Blob files"): a
// header holding a random per-blob data key wrapped under the active master key (bound to the blob id), then
// the stored bytes in 64 KiB segments, each sealed with AES-256-GCM under the data key (STREAM construction:
// truncation, appending, reordering and swapping segments or whole files are detected). Files written before
// encryption (no header magic) are still read as they are. Content addressing is of the plaintext, so storing
// the same content twice is still a no-op, and Get verifies the address after decrypting.
//
// Every write goes to a temp file in the same directory, is fsynced, then renamed into place, and the
// directory is fsynced: a crash leaves either the whole blob or nothing. Encryption and decryption stream with
// bounded memory (one segment), so AdoptFile of a multi-GB file does not load it.
//
// Errors: a blob whose bytes fail authentication (tampered header or body, truncated, appended to) or whose
// content no longer matches its address is kDataLoss naming the blob and "authentication failed"; one
// encrypted under a master key the keyring lacks is kDataLoss "… unknown master key id …". Ids look like
// "z-<64 hex>" (compressed) or "r-<64 hex>" (raw). Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/keyring.h"

namespace lathe {

struct BlobStoreOptions {
  // Encrypt new blobs under the keyring's active key. Reading encrypted blobs always needs the keyring.
  bool encrypt = true;
  size_t segment_bytes = size_t{64} << 10;  // plaintext bytes per sealed segment (4 KiB .. 16 MiB)
};

// A raw blob's plaintext as an open file descriptor, ready to mmap: the blob file itself (stored before
// encryption) or an anonymous in-memory file (memfd) holding the decrypted content — which occupies memory
// (shared memory, swappable) for as long as this or a mapping of it is open. Owns the descriptor.
class PlainFile {
 public:
  PlainFile(int fd, std::string name, bool in_memory) : fd_(fd), name_(std::move(name)), in_memory_(in_memory) {}
  ~PlainFile();
  PlainFile(PlainFile&& o) noexcept : fd_(o.fd_), name_(std::move(o.name_)), in_memory_(o.in_memory_) { o.fd_ = -1; }
  PlainFile& operator=(PlainFile&&) = delete;
  PlainFile(const PlainFile&) = delete;
  int fd() const { return fd_; }
  const std::string& name() const { return name_; }  // for messages
  bool in_memory() const { return in_memory_; }

 private:
  int fd_;
  std::string name_;
  bool in_memory_;
};

// What Rewrap did to one blob.
enum class RewrapOutcome { kAlreadyCurrent, kRewrapped, kEncrypted, kGone };

class BlobStore {
 public:
  // `keyring` may be null (no encryption: only plaintext blobs can be read); it must outlive the store.
  static Result<std::unique_ptr<BlobStore>> Open(const std::string& dir, const Keyring* keyring = nullptr,
                                                 BlobStoreOptions options = {});

  Result<std::string> Put(std::string_view bytes);
  // Moves (plaintext store) or encrypts (then removes) the file at `path` into the store.
  Result<std::string> AdoptFile(const std::string& path);
  // Returns the original bytes; see the header for errors.
  Result<std::string> Get(const std::string& id) const;
  // The plaintext of a raw blob (AdoptFile) as a file descriptor to memory-map.
  Result<PlainFile> OpenPlain(const std::string& id) const;
  bool Exists(const std::string& id) const;
  // Deletes a blob's file (a missing blob is not an error). The caller checks that nothing references it.
  Status Remove(const std::string& id);
  // A fresh temp path inside the store's directory (same filesystem, so AdoptFile is a rename).
  std::string TempPath(std::string_view hint) const;

  // Every blob id in the store.
  Result<std::vector<std::string>> List() const;
  // The master key id a blob is encrypted under; "" for a plaintext blob.
  Result<std::string> KeyIdOf(const std::string& id) const;
  // Blob count per master key id ("" = plaintext), e.g. to report blobs the keyring cannot read.
  Result<std::map<std::string, int64_t>> CountByKeyId() const;
  // Re-wraps a blob's data key under the keyring's active master key: only the header changes (the body is
  // copied, not re-encrypted) into a temp file that is fsynced and swapped in atomically, so readers see the
  // old or the new file, both readable while the ring holds both keys. A plaintext blob is encrypted.
  // kGone when the blob was removed meanwhile (it is not brought back).
  Result<RewrapOutcome> Rewrap(const std::string& id);

  // Test hooks: the file that holds a blob.
  Result<std::string> FilePathForTest(const std::string& id) const { return PathFor(id); }

 private:
  BlobStore(std::string dir, const Keyring* keyring, BlobStoreOptions options)
      : dir_(std::move(dir)), keyring_(keyring), options_(options) {}
  Result<std::string> PathFor(const std::string& id) const;
  // Streams the stored bytes of blob `id` (decrypting when encrypted) into `sink`; every byte passed to the
  // sink is authenticated.
  Status ReadStored(const std::string& id, const std::function<Status(std::string_view)>& sink) const;
  // Encrypts `src_fd` into a new temp file for blob `id` (id empty: computed from the content and returned).
  Result<std::string> EncryptToTemp(int src_fd, const std::string& src_name, std::string* id,
                                    const std::string& hash_prefix) const;
  bool encrypting() const { return keyring_ != nullptr && options_.encrypt; }

  std::string dir_;
  const Keyring* keyring_;
  BlobStoreOptions options_;
};

// Writes `bytes` to `path` durably: temp file (mode 0600), fsync, rename, fsync of the directory.
Status WriteFileAtomic(const std::string& path, std::string_view bytes);
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 34);
Status FsyncDirectory(const std::string& dir);

}  // namespace lathe
