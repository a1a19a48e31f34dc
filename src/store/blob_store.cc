#include "store/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

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

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "tmp", ec);
  if (ec) return Status::Internal("creating blob directory " + dir + ": " + ec.message());
  // Leftover temp files are from writes that never completed; they are garbage.
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "tmp", ec)) fs::remove(e.path(), ec);
  return std::unique_ptr<BlobStore>(new BlobStore(dir));
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

Result<std::string> BlobStore::Put(std::string_view bytes) {
  std::string id = "z-" + Sha256Hex(bytes);
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  std::error_code ec;
  if (fs::exists(path, ec)) return id;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::Internal("creating " + fs::path(path).parent_path().string() + ": " + ec.message());
  RETURN_IF_ERROR(WriteFileAtomic(path, ZstdCompress(bytes)));
  return id;
}

Result<std::string> BlobStore::AdoptFile(const std::string& src) {
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + src);
  Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = ErrnoStatus("read " + src);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    h.Update(std::string_view(buf, static_cast<size_t>(n)));
  }
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync " + src);
  std::string id = "r-" + h.FinalHex();
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::Internal("creating " + fs::path(path).parent_path().string() + ": " + ec.message());
  if (fs::exists(path, ec)) {
    fs::remove(src, ec);
    return id;
  }
  ::chmod(src.c_str(), 0400);
  if (::rename(src.c_str(), path.c_str()) != 0) return ErrnoStatus("rename " + src);
  RETURN_IF_ERROR(FsyncPath(fs::path(path).parent_path().string(), true));
  return id;
}

Result<std::string> BlobStore::Get(const std::string& id) const {
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  auto raw = ReadFile(path);
  if (!raw.ok()) {
    if (raw.status().code() == StatusCode::kNotFound) return Status::NotFound("blob " + id + " is missing");
    return raw.TakeStatus();
  }
  std::string bytes;
  if (id[0] == 'z') {
    auto d = ZstdDecompress(*raw);
    if (!d.ok()) return Status::DataLoss("blob " + id + " is corrupt: " + d.status().message());
    bytes = std::move(d).value();
  } else {
    bytes = std::move(raw).value();
  }
  if (Sha256Hex(bytes) != id.substr(2)) return Status::DataLoss("blob " + id + " does not match its checksum");
  return bytes;
}

Result<std::string> BlobStore::PathOf(const std::string& id) const {
  if (id.empty() || id[0] != 'r') return Status::InvalidArgument("blob " + id + " is not a raw blob");
  ASSIGN_OR_RETURN(std::string path, PathFor(id));
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound("blob " + id + " is missing");
  return path;
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

}  // namespace lathe
