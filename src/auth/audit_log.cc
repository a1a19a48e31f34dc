#include "auth/audit_log.h"

#include <chrono>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"
#include "store/blob_store.h"

namespace lathe {

namespace {

const std::string kGenesis(64, '0');
constexpr int64_t kVerifyPage = 5000;

std::string HeadMac(std::string_view key, int64_t seq, const std::string& hash, int64_t at_ms) {
  return HexEncode(HmacSha256(key, "lathe-audit-head:" + std::to_string(seq) + ":" + hash + ":" +
                                       std::to_string(at_ms)));
}

}  // namespace

Json AuditVerification::ToJson() const {
  Json j = {{"ok", ok}, {"entries", entries}, {"head_seq", head_seq}};
  if (!ok) {
    j["first_bad_seq"] = first_bad_seq;
    j["problem"] = problem;
  }
  return j;
}

std::string AuditLog::ChainHash(std::string_view key, const AuditRecord& e) {
  Json fields = Json::array({e.seq, e.at_ms, e.actor, e.actor_id, e.key_id, e.ip, e.action, e.project, e.target,
                             e.request_id, e.status, e.outcome, e.detail, e.prev_hash});
  // Invalid UTF-8 (a hostile path) must not make the dump throw: replace it, consistently on write and verify.
  return HexEncode(HmacSha256(key, fields.dump(-1, ' ', false, Json::error_handler_t::replace)));
}

AuditLog::AuditLog(Store* store, std::string key, std::string head_path, Options options)
    : store_(store), key_(std::move(key)), head_path_(std::move(head_path)), options_(options) {}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(Store* store, std::string key, std::string head_path,
                                                 Options options) {
  if (key.empty()) return Status::InvalidArgument("the audit chain key is empty");
  std::unique_ptr<AuditLog> log(new AuditLog(store, std::move(key), std::move(head_path), options));
  ASSIGN_OR_RETURN(std::optional<AuditRecord> last, store->LastAudit());
  log->last_hash_ = kGenesis;
  if (last) {
    log->last_seq_ = last->seq;
    log->last_hash_ = last->hash;
    log->last_at_ms_ = last->at_ms;
  }
  // Entries deleted from the end while the server was down: continue after the head so the numbers of the
  // deleted entries stay missing (Verify reports the gap) instead of being reused by new entries.
  auto text = ReadFile(log->head_path_, 1 << 16);
  if (text.ok()) {
    Json head = Json::parse(*text, nullptr, false);
    if (head.is_object() && head["seq"].is_number_integer() && head["hash"].is_string() &&
        head["at_ms"].is_number_integer() && head["mac"].is_string() &&
        ConstantTimeEquals(HeadMac(log->key_, head["seq"].get<int64_t>(), head["hash"].get<std::string>(),
                                   head["at_ms"].get<int64_t>()),
                           head["mac"].get<std::string>())) {
      const int64_t head_seq = head["seq"].get<int64_t>();
      if (head_seq > log->last_seq_) {
        LogError("the audit log ends before its head: entries were deleted",
                 {{"last_entry", std::to_string(log->last_seq_)}, {"head", std::to_string(head_seq)}});
        log->last_seq_ = head_seq;
        log->last_hash_ = head["hash"].get<std::string>();
      }
    } else {
      LogError("the audit head file is malformed or was modified", {{"path", log->head_path_}});
    }
  }
  log->writer_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void AuditLog::Record(AuditRecord entry) {
  if (entry.at_ms == 0) entry.at_ms = NowMicros() / 1000;
  if (entry.detail.empty()) entry.detail = "{}";
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      if (dropped_++ % 10000 == 0) {
        LogError("audit log queue full: entries are being dropped", {{"dropped", std::to_string(dropped_)}});
      }
      return;
    }
    queue_.push_back(std::move(entry));
    ++recorded_;
    wake = queue_.size() == 1;  // the writer sleeps only on an empty queue
  }
  if (wake) cv_.notify_all();
}

Status AuditLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = recorded_;
  const uint64_t attempts_before = failed_attempts_;
  cv_.notify_all();
  done_cv_.wait(lock, [&] { return settled_ >= target || failed_attempts_ > attempts_before || stop_; });
  if (settled_ >= target) return Status::Ok();
  return last_error_.ok() ? Status::Unavailable("the audit log is shutting down") : last_error_;
}

void AuditLog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms),
                 [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    std::deque<AuditRecord> batch;
    batch.swap(queue_);
    lock.unlock();
    Status st = WriteBatch(batch);
    lock.lock();
    if (st.ok()) {
      settled_ += batch.size();
    } else {
      // Keep the entries, oldest first, ahead of anything queued meanwhile; try again on the next tick.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
      last_error_ = st;
      ++failed_attempts_;
      LogError("audit log write failed; will retry", {{"error", st.ToString()}});
      if (stop_) {
        done_cv_.notify_all();
        return;
      }
      done_cv_.notify_all();
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.flush_interval_ms));
      lock.lock();
      continue;
    }
    done_cv_.notify_all();
  }
}

Status AuditLog::WriteBatch(std::deque<AuditRecord>& batch) {
  // Only this thread advances the chain; last_* are read by Head() under mu_.
  int64_t seq;
  std::string prev;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = last_seq_;
    prev = last_hash_;
  }
  std::vector<AuditRecord> rows;
  rows.reserve(batch.size());
  for (auto& e : batch) {
    AuditRecord r = e;
    r.seq = ++seq;
    r.prev_hash = prev;
    r.hash = ChainHash(key_, r);
    prev = r.hash;
    rows.push_back(std::move(r));
  }
  RETURN_IF_ERROR(store_->AppendAudit(rows));
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_seq_ = rows.back().seq;
    last_hash_ = rows.back().hash;
    last_at_ms_ = rows.back().at_ms;
  }
  Status head = WriteHead(rows.back().seq, rows.back().hash, rows.back().at_ms);
  if (!head.ok()) LogError("cannot write the audit head file", {{"error", head.ToString()}});
  return Status::Ok();
}

Status AuditLog::WriteHead(int64_t seq, const std::string& hash, int64_t at_ms) {
  Json j = {{"seq", seq}, {"hash", hash}, {"at_ms", at_ms}, {"mac", HeadMac(key_, seq, hash, at_ms)}};
  return WriteFileAtomic(head_path_, j.dump() + "\n");
}

Json AuditLog::Head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {{"seq", last_seq_}, {"hash", last_hash_}, {"at_ms", last_at_ms_}};
}

int64_t AuditLog::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

Result<AuditVerification> AuditLog::Verify() {
  AuditVerification v;
  auto fail = [&](int64_t seq, std::string problem) {
    v.ok = false;
    v.first_bad_seq = seq;
    v.problem = std::move(problem);
    return v;
  };
  int64_t expect_seq = 1;
  std::string prev = kGenesis;
  std::string last_hash;
  AuditQuery q;
  q.limit = kVerifyPage;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<AuditRecord> page, store_->ListAudit(q));
    for (const auto& e : page) {
      if (e.seq != expect_seq) {
        return fail(expect_seq, e.seq > expect_seq
                                    ? "entries " + std::to_string(expect_seq) + ".." + std::to_string(e.seq - 1) +
                                          " are missing (deleted)"
                                    : "entry " + std::to_string(e.seq) + " is out of order");
      }
      if (e.prev_hash != prev) {
        return fail(e.seq, "entry " + std::to_string(e.seq) + " does not link to entry " +
                               std::to_string(e.seq - 1) + " (an entry was replaced or removed)");
      }
      if (!ConstantTimeEquals(ChainHash(key_, e), e.hash)) {
        return fail(e.seq, "entry " + std::to_string(e.seq) + " was modified (its HMAC does not match)");
      }
      prev = e.hash;
      ++expect_seq;
      ++v.entries;
      q.after_seq = e.seq;
    }
    if (static_cast<int64_t>(page.size()) < q.limit) break;
  }
  // The head file: the newest entry written by this log. A chain that ends before it was cut short.
  auto text = ReadFile(head_path_, 1 << 16);
  if (!text.ok()) {
    if (v.entries > 0 && text.status().code() == StatusCode::kNotFound) {
      return fail(0, "the audit head file " + head_path_ + " is missing");
    }
    if (text.status().code() == StatusCode::kNotFound) return v;
    return text.status();
  }
  Json head = Json::parse(*text, nullptr, false);
  if (head.is_discarded() || !head.is_object() || !head["seq"].is_number_integer() || !head["hash"].is_string() ||
      !head["at_ms"].is_number_integer() || !head["mac"].is_string()) {
    return fail(0, "the audit head file " + head_path_ + " is malformed");
  }
  v.head_seq = head["seq"].get<int64_t>();
  const std::string head_hash = head["hash"].get<std::string>();
  if (!ConstantTimeEquals(HeadMac(key_, v.head_seq, head_hash, head["at_ms"].get<int64_t>()),
                          head["mac"].get<std::string>())) {
    return fail(0, "the audit head file was modified (its HMAC does not match)");
  }
  if (v.head_seq > v.entries) {
    return fail(v.entries + 1, "the log ends at entry " + std::to_string(v.entries) + " but entry " +
                                   std::to_string(v.head_seq) + " was written: entries at the end were deleted");
  }
  if (v.head_seq > 0) {
    AuditQuery at;
    at.after_seq = v.head_seq - 1;
    at.limit = 1;
    ASSIGN_OR_RETURN(std::vector<AuditRecord> e, store_->ListAudit(at));
    if (e.empty() || e[0].hash != head_hash) {
      return fail(v.head_seq, "entry " + std::to_string(v.head_seq) + " differs from the one recorded in the head file");
    }
  }
  return v;
}

}  // namespace lathe
