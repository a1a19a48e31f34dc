// Shared by the fuzz targets: a private scratch directory, and the invariant checks every importer obeys.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/status.h"
#include "data/dataset_file.h"

namespace lathe::fuzz {

// A private scratch directory, removed at exit.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    char tmpl[] = "/tmp/lathe-fuzz-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) std::abort();
    path = d;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline const std::string& Scratch() {
  static ScratchDir dir;
  return dir.path;
}

inline std::string WriteInput(const uint8_t* data, size_t size, const char* name) {
  std::string path = Scratch() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

[[noreturn]] inline void Violation(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
  std::abort();
}

// An import either succeeded (its output opens and reads back with the reported row count) or failed with
// a client-side error and left no output. kInternal or kDataLoss from reading our own input is a bug.
template <class R>
void CheckImport(const R& result, const std::string& out_path, const std::string& quarantine_path = "") {
  std::error_code ec;
  if (!result.ok()) {
    const StatusCode c = result.status().code();
    if (c == StatusCode::kInternal || c == StatusCode::kDataLoss || c == StatusCode::kOk) {
      Violation("unexpected status " + result.status().ToString());
    }
    if (std::filesystem::exists(out_path, ec)) Violation("failed import left " + out_path);
    if (!quarantine_path.empty() && std::filesystem::exists(quarantine_path, ec)) {
      Violation("failed import left " + quarantine_path);
    }
    return;
  }
  auto file = DatasetFile::Open(out_path);
  if (!file.ok()) Violation("output does not open: " + file.status().ToString());
  auto table = (*file)->ReadAll();
  if (!table.ok()) Violation("output does not read: " + table.status().ToString());
  if (table->num_rows != result->rows) Violation("row count differs from the result");
  std::filesystem::remove(out_path, ec);
  if (!quarantine_path.empty()) std::filesystem::remove(quarantine_path, ec);
}

}  // namespace lathe::fuzz
