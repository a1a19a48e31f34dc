// The audit log: an append-only record of every mutating call, login, API key use and permission denial
// (who, what, project, when, request id, outcome).
//
// Entries are hash-chained: entry n stores prev_hash = hash(n-1) and
//   hash(n) = HMAC-SHA256(audit key, canonical JSON of [seq, at_ms, actor, actor_id, key_id, ip, action,
//                                                     project, target, request_id, status, outcome, detail,
//                                                     prev_hash])
// with seq numbers 1, 2, 3, … without gaps. Verify() walks the chain: an edited entry fails its HMAC, a
// deleted or inserted one breaks the seq run or the prev_hash link. The chain key is a separate secret (the
// audit key file), so someone who can write the database but not read the key cannot rebuild the chain after
// an edit. Deleting entries at the end leaves a valid shorter chain; to catch that, the last seq and hash are
// also written to a head file (HMAC-protected) after every flush, and Verify() compares the two. Someone who
// can write both the database and the head file can still roll both back to an earlier state together: ship
// the head (GET /api/v1/admin/audit/head) to another system to protect against that too.
//
// Record() never blocks on the store: entries are queued and a background thread writes whatever has queued
// up in one transaction (group commit: at once when idle, in larger batches under load). If the store refuses a batch, the entries stay
// queued and are retried; beyond max_queue entries new ones are dropped and counted (dropped()), and the log
// says so. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/json.h"
#include "common/status.h"
#include "store/store.h"

namespace lathe {

struct AuditVerification {
  bool ok = true;
  int64_t entries = 0;       // entries checked
  int64_t first_bad_seq = 0; // 0 when ok
  std::string problem;       // what is wrong at first_bad_seq (or with the head)
  int64_t head_seq = 0;      // from the head file (0 if none yet)
  Json ToJson() const;
};

class AuditLog {
 public:
  struct Options {
    int64_t flush_interval_ms = 100;  // retry delay after a failed write; idle wake-up
    size_t max_queue = 1'000'000;
  };
  // `key`: the chain key (any length, 32 random bytes in practice); `head_path`: the head file.
  // Resumes the chain from the store's last entry.
  static Result<std::unique_ptr<AuditLog>> Open(Store* store, std::string key, std::string head_path,
                                                Options options);
  static Result<std::unique_ptr<AuditLog>> Open(Store* store, std::string key, std::string head_path) {
    return Open(store, std::move(key), std::move(head_path), Options{});
  }
  ~AuditLog();  // writes what is queued
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues an entry; seq, prev_hash and hash are assigned when it is written. at_ms = now when 0.
  void Record(AuditRecord entry);
  // Waits until every entry recorded before the call is written (or the store refused it).
  Status Flush();
  // Walks the whole chain (in pages) and compares its end with the head file.
  Result<AuditVerification> Verify();
  // The last written seq and hash: {"seq","hash","at_ms"}.
  Json Head() const;
  int64_t dropped() const;

  // The HMAC of `entry` (its hash field is ignored) under `key`, lower-case hex.
  static std::string ChainHash(std::string_view key, const AuditRecord& entry);

 private:
  AuditLog(Store* store, std::string key, std::string head_path, Options options);
  void Run();
  Status WriteBatch(std::deque<AuditRecord>& batch);  // called without mu_ held, by the writer thread only
  Status WriteHead(int64_t seq, const std::string& hash, int64_t at_ms);

  Store* store_;
  const std::string key_;
  const std::string head_path_;
  const Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // wakes the writer
  std::condition_variable done_cv_;   // wakes Flush()
  std::deque<AuditRecord> queue_;
  uint64_t recorded_ = 0;  // entries ever queued
  uint64_t settled_ = 0;   // entries written (or given up on); Flush waits for settled_ >= recorded_ at call
  Status last_error_;
  uint64_t failed_attempts_ = 0;
  int64_t dropped_ = 0;
  bool stop_ = false;
  int64_t last_seq_ = 0;  // written; guarded by mu_
  std::string last_hash_;
  int64_t last_at_ms_ = 0;
  std::thread writer_;
};

}  // namespace lathe
