#include "store/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/compress.h"
#include "common/crypto.h"

namespace lathe {
namespace fs = std::filesystem;

namespace {

Status ErrnoStatus(const std::string& what) {
  int e = errno;
  std::string msg = what + ": " + std::strerror(e);
  if (e == ENOSPC || e == EDQUOT) return Status::ResourceExhausted(msg);
  return Status::Internal(msg);
}

Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return ErrnoStatus("open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync " + path);
  return Status::Ok();
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ---- the encrypted blob file format (docs/formats.md, "Blob files")
//
//   offset  size  field
//   0       8     magic "\x89LENC\r\n\x1a"
//   8       4     format version, u32 little-endian (1)
//   12      4     segment size S in plaintext bytes, u32 LE
//   16      8     master key id (8 ASCII hex characters)
//   24      7     nonce prefix (random per file)
//   31      1     reserved, 0
//   32      61    data key (32 random bytes) sealed by EncryptAesGcm under the master key,
//                 aad = "lathe-blob-key:" + blob id + ":" + bytes [0, 32) of this header
//   93      ...   segments: segment i is AES-256-GCM(data key, nonce = prefix || u32 BE i || last flag,
//                 aad = u64 LE i || last flag) of S plaintext bytes (the last: 0..S bytes), then its 16-byte tag
//
// Every header byte is authenticated (by the wrapped key's aad, or by decryption failing), the last flag makes
// truncation at a segment boundary and appending detectable, the index in the nonce catches reordering, and
// the per-file data key and the blob id in the wrap catch swapping segments or files between blobs.
constexpr char kMagic[8] = {'\x89', 'L', 'E', 'N', 'C', '\r', '\n', '\x1a'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kFixedHeaderBytes = 32;
constexpr size_t kWrappedKeyBytes = kAesGcmOverheadBytes + kAesGcmKeyBytes;  // 61
constexpr size_t kHeaderBytes = kFixedHeaderBytes + kWrappedKeyBytes;        // 93
constexpr size_t kNoncePrefixBytes = 7;
constexpr size_t kMinSegmentBytes = size_t{4} << 10;
constexpr size_t kMaxSegmentBytes = size_t{16} << 20;

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Whether a file is an encrypted blob. A file is read as a plaintext blob (stored before encryption) only when
// its first 8 bytes differ from the magic in at least 4 places, so a flipped byte or two in an encrypted
// header is reported as tampering, never mistaken for a plaintext blob (the raw blobs are memory-mapped
// without hashing). Plaintext blobs start with a zstd frame or a dataset file's magic, far from this one.
bool HasMagic(std::string_view head) {
  int same = 0;
  for (size_t i = 0; i < 8 && i < head.size(); ++i) same += head[i] == kMagic[i] ? 1 : 0;
  return same >= 5;
}

std::string WrapAad(const std::string& blob_id, std::string_view fixed_header) {
  return "lathe-blob-key:" + blob_id + ":" + std::string(fixed_header);
}

std::string SegmentNonce(std::string_view prefix, uint32_t index, bool last) {
  std::string n(prefix);
  for (int i = 3; i >= 0; --i) n.push_back(static_cast<char>((index >> (8 * i)) & 0xff));
  n.push_back(last ? 1 : 0);
  return n;
}

std::string SegmentAad(uint32_t index, bool last) {
  std::string a(9, '\0');
  for (int i = 0; i < 8; ++i) a[static_cast<size_t>(i)] = static_cast<char>((uint64_t{index} >> (8 * i)) & 0xff);
  a[8] = last ? 1 : 0;
  return a;
}

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// AES-256-GCM under one data key, reused across the segments of a file (the key schedule is set up once).
class SegmentCipher {
 public:
  explicit SegmentCipher(std::string_view key, bool encrypt) : ctx_(EVP_CIPHER_CTX_new()) {
    if (ctx_ != nullptr) {
      ok_ = (encrypt ? EVP_EncryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, U(key), nullptr)
                     : EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, U(key), nullptr)) == 1;
    }
  }
  ~SegmentCipher() { EVP_CIPHER_CTX_free(ctx_); }
  SegmentCipher(const SegmentCipher&) = delete;
  SegmentCipher& operator=(const SegmentCipher&) = delete;

  // out (plaintext.size() + 16 bytes) = ciphertext || tag.
  Status Seal(std::string_view nonce, std::string_view aad, std::string_view plaintext, char* out) {
    int len = 0;
    auto* dst = reinterpret_cast<unsigned char*>(out);
    if (!ok_ || EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, U(nonce)) != 1 ||
        EVP_EncryptUpdate(ctx_, nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(ctx_, dst, &len, U(plaintext), static_cast<int>(plaintext.size())) != 1) {
      return Status::Internal("AES-GCM segment encryption failed");
    }
    int tail = 0;
    if (EVP_EncryptFinal_ex(ctx_, dst + len, &tail) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAesGcmTagBytes),
                            dst + plaintext.size()) != 1) {
      return Status::Internal("AES-GCM segment encryption failed");
    }
    return Status::Ok();
  }

  // `sealed` = ciphertext || tag -> out (sealed.size() - 16 bytes). false = authentication failed; `out` is
  // then scrubbed.
  bool Open(std::string_view nonce, std::string_view aad, std::string_view sealed, char* out) {
    const size_t n = sealed.size() - kAesGcmTagBytes;
    int len = 0;
    auto* dst = reinterpret_cast<unsigned char*>(out);
    std::string tag(sealed.substr(n));
    bool good = ok_ && EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, U(nonce)) == 1 &&
                EVP_DecryptUpdate(ctx_, nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
                EVP_DecryptUpdate(ctx_, dst, &len, U(sealed), static_cast<int>(n)) == 1 &&
                EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAesGcmTagBytes), tag.data()) == 1;
    int tail = 0;
    good = good && EVP_DecryptFinal_ex(ctx_, dst + len, &tail) == 1;
    if (!good && n > 0) std::memset(out, 0, n);
    return good;
  }

 private:
  EVP_CIPHER_CTX* ctx_;
  bool ok_ = false;
};

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Reads up to data.size() bytes (fewer only at end of file).
Result<size_t> ReadFull(int fd, char* data, size_t size, const std::string& what) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::read(fd, data + off, size - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + what);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  return off;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

std::string FixedHeader(uint32_t segment_bytes, const std::string& key_id, std::string_view prefix) {
  std::string h(kFixedHeaderBytes, '\0');
  std::memcpy(h.data(), kMagic, 8);
  PutU32(h.data() + 8, kFormatVersion);
  PutU32(h.data() + 12, segment_bytes);
  std::memcpy(h.data() + 16, key_id.data(), 8);
  std::memcpy(h.data() + 24, prefix.data(), kNoncePrefixBytes);
  return h;
}

// Streams plaintext into an encrypted blob file. The header is written last (its wrapped key binds the blob
// id, which AdoptFile learns only after the whole file was hashed).
class EncryptingWriter {
 public:
  EncryptingWriter(int fd, std::string name, size_t segment_bytes)
      : fd_(fd),
        name_(std::move(name)),
        segment_bytes_(segment_bytes),
        data_key_(RandomBytes(kAesGcmKeyBytes)),
        prefix_(RandomBytes(kNoncePrefixBytes)),
        cipher_(data_key_, true) {
    pending_.reserve(segment_bytes);
    sealed_.resize(segment_bytes + kAesGcmTagBytes);
  }
  ~EncryptingWriter() { OPENSSL_cleanse(data_key_.data(), data_key_.size()); }

  Status Start() {
    if (::lseek(fd_, static_cast<off_t>(kHeaderBytes), SEEK_SET) < 0) return ErrnoStatus("seek " + name_);
    return Status::Ok();
  }

  Status Append(std::string_view data) {
    while (!data.empty()) {
      // A full pending segment is sealed only once more data arrives: the last segment must carry the flag.
      if (pending_.size() == segment_bytes_) RETURN_IF_ERROR(Flush(false));
      const size_t take = std::min(segment_bytes_ - pending_.size(), data.size());
      pending_.append(data.data(), take);
      data.remove_prefix(take);
    }
    return Status::Ok();
  }

  // Seals the last segment, writes the header for blob `id` under `master`, fsyncs.
  Status Finish(const MasterKey& master, const std::string& id) {
    RETURN_IF_ERROR(Flush(true));
    std::string header = FixedHeader(static_cast<uint32_t>(segment_bytes_), master.id, prefix_);
    ASSIGN_OR_RETURN(std::string wrapped, EncryptAesGcm(master.key, data_key_, WrapAad(id, header)));
    header += wrapped;
    size_t off = 0;
    while (off < header.size()) {
      ssize_t n = ::pwrite(fd_, header.data() + off, header.size() - off, static_cast<off_t>(off));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write " + name_);
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd_) != 0) return ErrnoStatus("fsync " + name_);
    return Status::Ok();
  }

 private:
  Status Flush(bool last) {
    if (index_ == UINT32_MAX) return Status::InvalidArgument("blob too large for its segment size");
    RETURN_IF_ERROR(cipher_.Seal(SegmentNonce(prefix_, index_, last), SegmentAad(index_, last), pending_,
                                 sealed_.data()));
    RETURN_IF_ERROR(WriteAll(fd_, std::string_view(sealed_.data(), pending_.size() + kAesGcmTagBytes), name_));
    ++index_;
    pending_.clear();
    return Status::Ok();
  }

  int fd_;
  std::string name_;
  size_t segment_bytes_;
  std::string data_key_;
  std::string prefix_;
  SegmentCipher cipher_;
  std::string pending_;
  std::string sealed_;
  uint32_t index_ = 0;
};

struct ParsedHeader {
  uint32_t segment_bytes = 0;
  std::string key_id;
  std::string prefix;
  std::string fixed;    // bytes [0, 32)
  std::string wrapped;  // bytes [32, 93)
};

Status AuthFailed(const std::string& id, const std::string& where) {
  return Status::DataLoss("blob " + id + ": authentication failed (" + where +
                          "; the file was modified, truncated or written under another key)");
}

Result<ParsedHeader> ParseHeader(std::string_view h, const std::string& id) {
  if (h.size() < kHeaderBytes) return AuthFailed(id, "header truncated");
  ParsedHeader p;
  if (std::memcmp(h.data(), kMagic, 8) != 0) return AuthFailed(id, "header magic");
  if (GetU32(h.data() + 8) != kFormatVersion) {
    return Status::DataLoss("blob " + id + ": unsupported encrypted format version " +
                            std::to_string(GetU32(h.data() + 8)) + " (authentication failed)");
  }
  p.segment_bytes = GetU32(h.data() + 12);
  if (p.segment_bytes < kMinSegmentBytes || p.segment_bytes > kMaxSegmentBytes || h[31] != 0) {
    return AuthFailed(id, "header");
  }
  p.key_id.assign(h.data() + 16, 8);
  p.prefix.assign(h.data() + 24, kNoncePrefixBytes);
  p.fixed.assign(h.data(), kFixedHeaderBytes);
  p.wrapped.assign(h.data() + kFixedHeaderBytes, kWrappedKeyBytes);
  return p;
}

// The data key of an encrypted blob, unwrapped with the keyring.
Result<std::string> UnwrapDataKey(const Keyring* keyring, const ParsedHeader& h, const std::string& id) {
  if (keyring == nullptr) {
    return Status::DataLoss("blob " + id + " is encrypted but this server has no master key configured");
  }
  auto master = keyring->Find(h.key_id);
  if (!master.ok()) return Status::DataLoss("blob " + id + " is encrypted under an " + master.status().message());
  auto key = DecryptAesGcm(*master, h.wrapped, WrapAad(id, h.fixed));
  if (!key.ok()) return AuthFailed(id, "header or wrapped data key");
  return key;
}

Status CopyRange(int src, int dst, off_t from, const std::string& what) {
  off_t in = from, out = from;
  for (;;) {
    ssize_t n = ::copy_file_range(src, &in, dst, &out, size_t{1} << 30, 0);
    if (n > 0) continue;
    if (n == 0) return Status::Ok();
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
      return ErrnoStatus("copy " + what);
    }
    break;  // fall back to read/write
  }
  std::string buf(size_t{1} << 16, '\0');
  for (;;) {
    ssize_t n = ::pread(src, buf.data(), buf.size(), in);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + what);
    }
    if (n == 0) return Status::Ok();
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      ssize_t w = ::pwrite(dst, buf.data() + off, static_cast<size_t>(n) - off, out);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write " + what);
      }
      off += static_cast<size_t>(w);
      out += w;
    }
    in += n;
  }
}

// Puts `tmp` at `path` only if `path` still exists (a blob removed meanwhile stays removed); the old file is
// deleted. false = `path` was gone.
Result<bool> SwapIntoPlace(const std::string& tmp, const std::string& path) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
    ::unlink(tmp.c_str());  // now the old file
  } else if (errno == ENOENT) {
    ::unlink(tmp.c_str());
    return false;
  } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
    // A filesystem without RENAME_EXCHANGE: a plain rename (a concurrent Remove could be undone).
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      ::unlink(tmp.c_str());
      return false;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      Status st = ErrnoStatus("rename " + tmp);
      ::unlink(tmp.c_str());
      return st;
    }
  } else {
    Status st = ErrnoStatus("rename " + tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  RETURN_IF_ERROR(FsyncPath(fs::path(path).parent_path().string(), true));
  return true;
}

}  // namespace

PlainFile::~PlainFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status FsyncDirectory(const std::string& dir) { return FsyncPath(dir.empty() ? "." : dir, true); }

Status WriteFileAtomic(const std::string& path, std::string_view bytes) {
  std::string tmp = path + ".tmp-" + RandomHex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create " + tmp);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = ErrnoStatus("write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status st = ErrnoStatus("fsync " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = ErrnoStatus("rename " + tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  // A bare file name lives in the working directory: its parent is ".", not "".
  const std::string dir = fs::path(path).parent_path().string();
  return FsyncPath(dir.empty() ? "." : dir, true);
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no such file: " + path);
    return ErrnoStatus("open " + path);
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = ErrnoStatus("read " + path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::PayloadTooLarge("file " + path + " is larger than the limit");
    }
  }
  ::close(fd);
  return out;
}


Result<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& dir, const Keyring* keyring,
                                                   BlobStoreOptions options) {
  if (options.segment_bytes < kMinSegmentBytes || options.segment_bytes > kMaxSegmentBytes) {
    return Status::InvalidArgument("blob segment size must be 4 KiB .. 16 MiB");
  }
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "tmp", ec);
  if (ec) return Status::Internal("creating blob directory " + dir + ": " + ec.message());
  // Leftover temp files are from writes that never completed; they are garbage.
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "tmp", ec)) fs::remove(e.path(), ec);
  return std::unique_ptr<BlobStore>(new BlobStore(dir, keyring, options));
}

std::string BlobStore::TempPath(std::string_view hint) const {
  return (fs::path(dir_) / "tmp" / (std::string(hint) + "-" + RandomHex(8))).string();
}

Result<std::string> BlobStore::PathFor(const std::string& id) const {
  if (id.size() != 66 || (id[0] != 'z' && id[0] != 'r') || id[1] != '-' || !IsHex64(std::string_view(id).substr(2))) {
    return Status::InvalidArgument("malformed blob id '" + id + "'");
  }
  return (fs::path(dir_) / std::string(1, id[0]) / id.substr(2, 2) / id.substr(2)).string();
}

namespace {

Status MakeParent(const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::Internal("creating " + fs::path(path).parent_path().string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<std::string> BlobStore::EncryptToTemp(int src_fd, const std::string& src_name, std::string* id,
                                             const std::string& hash_prefix) const {
  const std::string tmp = TempPath("enc");
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoStatus("create " + tmp);
  auto fail = [&](Status st) -> Status {
    ::unlink(tmp.c_str());
    return st;
  };
  EncryptingWriter w(out.get(), tmp, options_.segment_bytes);
  if (Status st = w.Start(); !st.ok()) return fail(st);
  const bool hash = id->empty();
  Sha256 h;
  std::string buf(size_t{1} << 20, '\0');
  for (;;) {
    auto n = ReadFull(src_fd, buf.data(), buf.size(), src_name);
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    std::string_view chunk(buf.data(), *n);
    if (hash) h.Update(chunk);
    if (Status st = w.Append(chunk); !st.ok()) return fail(st);
    if (*n < buf.size()) break;
  }
  if (hash) *id = hash_prefix + h.FinalHex();
  if (Status st = w.Finish(keyring_->Active(), *id); !st.ok()) return fail(st);
  return tmp;
}

Result<std::string> BlobStore::Put(std::string_view bytes) {
  std::string id = "z-" + Sha256Hex(bytes);
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  std::error_code ec;
  if (fs::exists(path, ec)) return id;
  RETURN_IF_ERROR(MakeParent(path));
  if (!encrypting()) {
    RETURN_IF_ERROR(WriteFileAtomic(path, ZstdCompress(bytes)));
    return id;
  }
  const std::string compressed = ZstdCompress(bytes);
  const std::string tmp = TempPath("put");
  {
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.get() < 0) return ErrnoStatus("create " + tmp);
    EncryptingWriter w(out.get(), tmp, options_.segment_bytes);
    Status st = w.Start();
    if (st.ok()) st = w.Append(compressed);
    if (st.ok()) st = w.Finish(keyring_->Active(), id);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = ErrnoStatus("rename " + tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  RETURN_IF_ERROR(FsyncPath(fs::path(path).parent_path().string(), true));
  return id;
}

Result<std::string> BlobStore::AdoptFile(const std::string& src) {
  Fd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("open " + src);
  std::error_code ec;
  if (encrypting()) {
    // One pass: hash and encrypt together; the header (which binds the id) is written at the end.
    std::string id;
    ASSIGN_OR_RETURN(std::string tmp, EncryptToTemp(fd.get(), src, &id, "r-"));
    auto path = PathFor(id);
    Status st = path.ok() ? MakeParent(*path) : path.status();
    if (st.ok() && fs::exists(*path, ec)) {
      ::unlink(tmp.c_str());
      fs::remove(src, ec);
      return id;
    }
    if (st.ok()) ::chmod(tmp.c_str(), 0400);
    if (st.ok() && ::rename(tmp.c_str(), path->c_str()) != 0) st = ErrnoStatus("rename " + tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    RETURN_IF_ERROR(FsyncPath(fs::path(*path).parent_path().string(), true));
    // The plaintext source is no longer needed; unlink only (it never reached the store's namespace).
    fs::remove(src, ec);
    return id;
  }
  Sha256 h;
  std::string buf(size_t{1} << 16, '\0');
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), buf.data(), buf.size(), src));
    if (n == 0) break;
    h.Update(std::string_view(buf.data(), n));
    if (n < buf.size()) break;
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + src);
  std::string id = "r-" + h.FinalHex();
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  RETURN_IF_ERROR(MakeParent(path));
  if (fs::exists(path, ec)) {
    fs::remove(src, ec);
    return id;
  }
  ::chmod(src.c_str(), 0400);
  if (::rename(src.c_str(), path.c_str()) != 0) return ErrnoStatus("rename " + src);
  RETURN_IF_ERROR(FsyncPath(fs::path(path).parent_path().string(), true));
  return id;
}

Status BlobStore::ReadStored(const std::string& id, const std::function<Status(std::string_view)>& sink) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound("blob " + id + " is missing");
    return ErrnoStatus("open " + path);
  }
  std::string head(kHeaderBytes, '\0');
  ASSIGN_OR_RETURN(size_t got, ReadFull(fd.get(), head.data(), head.size(), path));
  head.resize(got);
  if (!HasMagic(head)) {
    // Written before encryption: the stored bytes as they are (Get still checks the address).
    RETURN_IF_ERROR(sink(head));
    std::string buf(size_t{1} << 16, '\0');
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, ReadFull(fd.get(), buf.data(), buf.size(), path));
      if (n == 0) break;
      RETURN_IF_ERROR(sink(std::string_view(buf.data(), n)));
      if (n < buf.size()) break;
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(ParsedHeader h, ParseHeader(head, id));
  ASSIGN_OR_RETURN(std::string data_key, UnwrapDataKey(keyring_, h, id));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes) return AuthFailed(id, "header truncated");
  const uint64_t sealed_segment = h.segment_bytes + kAesGcmTagBytes;
  uint64_t remaining = size - kHeaderBytes;
  SegmentCipher cipher(data_key, false);
  OPENSSL_cleanse(data_key.data(), data_key.size());
  std::string in(sealed_segment, '\0'), out(h.segment_bytes, '\0');
  for (uint64_t i = 0;; ++i) {
    if (i > UINT32_MAX) return AuthFailed(id, "too many segments");
    const bool last = remaining <= sealed_segment;
    const size_t n = static_cast<size_t>(last ? remaining : sealed_segment);
    if (n < kAesGcmTagBytes) return AuthFailed(id, "segment " + std::to_string(i) + " truncated");
    ASSIGN_OR_RETURN(size_t got_n, ReadFull(fd.get(), in.data(), n, path));
    if (got_n != n) return AuthFailed(id, "file shrank while reading");
    const auto index = static_cast<uint32_t>(i);
    if (!cipher.Open(SegmentNonce(h.prefix, index, last), SegmentAad(index, last), std::string_view(in.data(), n),
                     out.data())) {
      return AuthFailed(id, "segment " + std::to_string(i));
    }
    RETURN_IF_ERROR(sink(std::string_view(out.data(), n - kAesGcmTagBytes)));
    remaining -= n;
    if (last) break;
  }
  OPENSSL_cleanse(out.data(), out.size());
  return Status::Ok();
}

Result<std::string> BlobStore::Get(const std::string& id) const {
  std::string raw;
  RETURN_IF_ERROR(ReadStored(id, [&raw](std::string_view chunk) {
    raw.append(chunk);
    return Status::Ok();
  }));
  std::string bytes;
  if (id[0] == 'z') {
    auto d = ZstdDecompress(raw);
    if (!d.ok()) return Status::DataLoss("blob " + id + " is corrupt: " + d.status().message());
    bytes = std::move(d).value();
  } else {
    bytes = std::move(raw);
  }
  if (Sha256Hex(bytes) != id.substr(2)) return Status::DataLoss("blob " + id + " does not match its checksum");
  return bytes;
}

Result<PlainFile> BlobStore::OpenPlain(const std::string& id) const {
  if (id.empty() || id[0] != 'r') return Status::InvalidArgument("blob " + id + " is not a raw blob");
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return Status::NotFound("blob " + id + " is missing");
      return ErrnoStatus("open " + path);
    }
    char head[8];
    ASSIGN_OR_RETURN(size_t got, ReadFull(fd.get(), head, sizeof(head), path));
    if (!HasMagic(std::string_view(head, got))) return PlainFile(fd.release(), path, false);
  }
  // Decrypted into anonymous memory, never onto a disk: the plaintext lives as long as its mappings.
  Fd mem(::memfd_create(("lathe-blob-" + id.substr(2, 12)).c_str(), MFD_CLOEXEC));
  if (mem.get() < 0) return ErrnoStatus("memfd_create for blob " + id);
  RETURN_IF_ERROR(ReadStored(id, [&](std::string_view chunk) { return WriteAll(mem.get(), chunk, "memfd"); }));
  return PlainFile(mem.release(), "blob " + id + " (decrypted in memory)", true);
}

bool BlobStore::Exists(const std::string& id) const {
  auto p = PathFor(id);
  std::error_code ec;
  return p.ok() && fs::exists(*p, ec);
}

Status BlobStore::Remove(const std::string& id) {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return Status::Internal("removing blob " + id + ": " + ec.message());
  return Status::Ok();
}

Result<std::vector<std::string>> BlobStore::List() const {
  std::vector<std::string> out;
  for (const char* kind : {"z", "r"}) {
    const fs::path root = fs::path(dir_) / kind;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    for (const auto& shard : fs::directory_iterator(root, ec)) {
      if (!shard.is_directory(ec)) continue;
      for (const auto& e : fs::directory_iterator(shard.path(), ec)) {
        const std::string name = e.path().filename().string();
        if (IsHex64(name)) out.push_back(std::string(kind) + "-" + name);
      }
    }
    if (ec) return Status::Internal("listing blobs in " + root.string() + ": " + ec.message());
  }
  return out;
}

Result<std::string> BlobStore::KeyIdOf(const std::string& id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound("blob " + id + " is missing");
    return ErrnoStatus("open " + path);
  }
  char head[kFixedHeaderBytes];
  ASSIGN_OR_RETURN(size_t got, ReadFull(fd.get(), head, sizeof(head), path));
  if (!HasMagic(std::string_view(head, got))) return std::string();
  if (got < kFixedHeaderBytes) return AuthFailed(id, "header truncated");
  return std::string(head + 16, 8);
}

Result<std::map<std::string, int64_t>> BlobStore::CountByKeyId() const {
  ASSIGN_OR_RETURN(auto ids, List());
  std::map<std::string, int64_t> out;
  for (const auto& id : ids) {
    auto key = KeyIdOf(id);
    if (key.ok()) ++out[*key];
    else if (key.status().code() == StatusCode::kDataLoss) ++out["(corrupt)"];
  }
  return out;
}

Result<RewrapOutcome> BlobStore::Rewrap(const std::string& id) {
  if (keyring_ == nullptr) return Status::FailedPrecondition("no master key is configured");
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return RewrapOutcome::kGone;
    return ErrnoStatus("open " + path);
  }
  struct stat src_stat;
  if (::fstat(fd.get(), &src_stat) != 0) return ErrnoStatus("stat " + path);
  std::string head(kHeaderBytes, '\0');
  ASSIGN_OR_RETURN(size_t got, ReadFull(fd.get(), head.data(), head.size(), path));
  head.resize(got);
  std::string tmp;
  RewrapOutcome outcome;
  if (!HasMagic(head)) {
    if (!options_.encrypt) return RewrapOutcome::kAlreadyCurrent;
    // Written before encryption: encrypt it now (its content is verified against the address first, so a
    // corrupt plaintext blob is not sealed as if it were good).
    if (::lseek(fd.get(), 0, SEEK_SET) < 0) return ErrnoStatus("seek " + path);
    std::string known_id;
    if (id[0] == 'z') {
      RETURN_IF_ERROR(Get(id).status());  // compressed blobs are small: check the decompressed content
      known_id = id;
    }
    ASSIGN_OR_RETURN(tmp, EncryptToTemp(fd.get(), path, &known_id, "r-"));
    if (known_id != id) {  // a raw blob is hashed while it is encrypted
      ::unlink(tmp.c_str());
      return Status::DataLoss("blob " + id + " does not match its checksum");
    }
    outcome = RewrapOutcome::kEncrypted;
  } else {
    ASSIGN_OR_RETURN(ParsedHeader h, ParseHeader(head, id));
    const MasterKey active = keyring_->Active();
    if (h.key_id == active.id) return RewrapOutcome::kAlreadyCurrent;
    ASSIGN_OR_RETURN(std::string data_key, UnwrapDataKey(keyring_, h, id));
    std::string header = FixedHeader(h.segment_bytes, active.id, h.prefix);
    auto wrapped = EncryptAesGcm(active.key, data_key, WrapAad(id, header));
    OPENSSL_cleanse(data_key.data(), data_key.size());
    if (!wrapped.ok()) return wrapped.status();
    header += *wrapped;
    tmp = TempPath("rewrap");
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.get() < 0) return ErrnoStatus("create " + tmp);
    Status st = WriteAll(out.get(), header, tmp);
    if (st.ok()) st = CopyRange(fd.get(), out.get(), static_cast<off_t>(kHeaderBytes), path);
    if (st.ok() && ::fsync(out.get()) != 0) st = ErrnoStatus("fsync " + tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    outcome = RewrapOutcome::kRewrapped;
  }
  ::chmod(tmp.c_str(), src_stat.st_mode & 0777);
  ASSIGN_OR_RETURN(bool swapped, SwapIntoPlace(tmp, path));
  return swapped ? outcome : RewrapOutcome::kGone;
}

}  // namespace lathe
