// A minimal RAII wrapper over the SQLite C API used by the SQLite Store: prepared statements with bound
// parameters only (no SQL string building from input), errors as Status. Internal to src/store.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lathe::sqlite {

class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool prepared() const { return stmt_ != nullptr; }
  const Status& prepare_status() const { return prepare_status_; }

  Stmt& Bind(int idx, std::string_view v);
  Stmt& Bind(int idx, const std::string& v) { return Bind(idx, std::string_view(v)); }
  Stmt& Bind(int idx, const char* v) { return Bind(idx, std::string_view(v)); }
  Stmt& Bind(int idx, int64_t v);
  Stmt& Bind(int idx, int v) { return Bind(idx, static_cast<int64_t>(v)); }
  Stmt& Bind(int idx, bool v) { return Bind(idx, static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& Bind(int idx, double v);

  // Steps once: returns true when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion (for statements that return no rows).
  Status Exec();
  // Makes the statement runnable again with new bindings (one prepare for many executions).
  void Reset();

  std::string Text(int col) const;
  int64_t Int(int col) const;
  double Double(int col) const;
  bool IsNull(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Status prepare_status_;
};

// Steps `s` to the end, converting each row with `read(s)`.
template <class F>
auto CollectRows(Stmt& s, F&& read) -> Result<std::vector<decltype(read(s))>> {
  std::vector<decltype(read(s))> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(read(s));
  }
}

Status ExecScript(sqlite3* db, const char* sql);
Status ErrorFromSqlite(sqlite3* db, int rc, std::string_view what);

}  // namespace lathe::sqlite
