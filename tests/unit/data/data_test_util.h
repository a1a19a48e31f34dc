// Helpers shared by the data-layer tests: a scratch directory and a one-call CSV import.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "data/csv_import.h"
#include "data/dataset_file.h"

namespace lathe::testing {

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/lathe-data-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream f(Path(name), std::ios::binary);
    f << content;
    return Path(name);
  }
  size_t FileCount() const {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(path_)) n += e.is_regular_file();
    return n;
  }

 private:
  std::string path_;
};

inline std::string Fixture(const std::string& name) { return std::string(LATHE_TEST_DATA_DIR) + "/" + name; }

struct Imported {
  Status status;
  ImportResult result;
  Table table;
};

// Imports `path` and reads the whole dataset back.
inline Imported ImportPath(const std::string& path, const ScratchDir& dir, CsvOptions options = {}) {
  Imported out;
  std::string dst = dir.Path("out.lcol");
  std::filesystem::remove(dst);
  auto r = ImportCsvFile(path, dst, options, nullptr, nullptr);
  if (!r.ok()) {
    out.status = r.status();
    return out;
  }
  out.result = *r;
  auto f = DatasetFile::Open(dst);
  if (!f.ok()) {
    out.status = f.status();
    return out;
  }
  auto t = (*f)->ReadAll();
  if (!t.ok()) {
    out.status = t.status();
    return out;
  }
  out.table = std::move(*t);
  return out;
}

inline Imported ImportText(const std::string& csv, const ScratchDir& dir, CsvOptions options = {}) {
  return ImportPath(dir.Write("in.csv", csv), dir, options);
}

}  // namespace lathe::testing
