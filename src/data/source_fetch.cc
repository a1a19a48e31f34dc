#include "data/source_fetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace lathe {

SpoolFile::~SpoolFile() {
  if (!committed_) Abandon();
}

Status SpoolFile::Open(const std::string& out_path) {
  if (out_path.empty()) return Status::InvalidArgument("output path is empty");
  if (file_ != nullptr) return Status::Internal("spool file already open");
  out_path_ = out_path;
  std::string tmpl = out_path + ".tmp-XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return Status::Internal("creating " + tmpl + ": " + std::strerror(errno));
  tmp_path_ = tmpl;
  file_ = fdopen(fd, "wb");
  if (file_ == nullptr) {
    int err = errno;
    close(fd);
    unlink(tmp_path_.c_str());
    tmp_path_.clear();
    return Status::Internal("opening " + tmpl + ": " + std::strerror(err));
  }
  return Status::Ok();
}

Status SpoolFile::Write(std::string_view bytes) {
  if (file_ == nullptr) return Status::Internal("spool file is not open");
  if (bytes.empty()) return Status::Ok();
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return Status::Internal("writing " + tmp_path_ + ": " + std::strerror(errno));
  }
  bytes_ += static_cast<int64_t>(bytes.size());
  last_byte_ = static_cast<unsigned char>(bytes.back());
  return Status::Ok();
}

Status SpoolFile::Commit() {
  if (file_ == nullptr) return Status::Internal("spool file is not open");
  FILE* f = file_;
  file_ = nullptr;
  bool ok = std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  int err = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok || std::rename(tmp_path_.c_str(), out_path_.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp_path_.c_str());
    tmp_path_.clear();
    return Status::Internal("writing " + out_path_ + ": " + std::strerror(err));
  }
  committed_ = true;
  tmp_path_.clear();
  return Status::Ok();
}

void SpoolFile::Abandon() {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  if (!tmp_path_.empty()) {
    unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }
}

void AppendCsvField(std::string_view field, bool quote_empty, std::string* out) {
  bool quote = field.empty() ? quote_empty : field.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace lathe
