#include "store/keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "common/crypto.h"
#include "common/log.h"
#include "store/blob_store.h"

namespace lathe {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPiiAad = "lathe-pii-key";

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == '\n' || s.front() == '\r' || s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  return std::string(s);
}

int Nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> HexToBytes(std::string_view hex) {
  if (hex.size() % 2) return Status::InvalidArgument("odd number of hex characters");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = Nibble(hex[i]), lo = Nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("not hex");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// The key file holds 64 hex characters. Created with mode 0600 when absent; a file that exists but is
// malformed is an error (never silently replaced: that would orphan every stored secret and blob).
Result<std::string> LoadOrCreateKeyFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    std::string key = RandomBytes(kAesGcmKeyBytes);
    std::string hex = HexEncode(key) + "\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::FailedPrecondition("cannot create master key file " + path + ": " + std::strerror(errno));
    }
    bool ok = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Status::Internal("cannot write master key file " + path);
    LogInfo("created master key", {{"path", path}, {"key_id", Keyring::KeyId(key)}});
    return key;
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 4096));
  auto key = Keyring::ParseKeyHex(text, "master key file " + path);
  if (!key.ok()) return Status::FailedPrecondition(key.status().message());
  return key;
}

Status WriteKeyFile(const std::string& path, const std::string& key) {
  return WriteFileAtomic(path, HexEncode(key) + "\n");
}

}  // namespace

std::string Keyring::KeyId(std::string_view key) {
  return Sha256Hex("lathe-key-id" + std::string(key)).substr(0, 8);
}

Result<std::string> Keyring::ParseKeyHex(std::string_view text, const std::string& what) {
  const std::string t = Trim(text);
  if (t.size() == 64) {
    auto bytes = HexToBytes(t);
    if (bytes.ok()) return bytes;
  }
  return Status::InvalidArgument(what + " must hold exactly 64 hex characters (32 bytes; e.g. `openssl rand -hex 32`)");
}

std::unique_ptr<Keyring> Keyring::ForTest(const std::vector<std::string>& keys) {
  std::unique_ptr<Keyring> ring(new Keyring());
  ring->from_env_ = true;  // nothing is persisted
  for (const auto& k : keys) ring->keys_[KeyId(k)] = k;
  if (!keys.empty()) ring->active_id_ = ring->primary_id_ = KeyId(keys[0]);
  if (!keys.empty()) ring->pii_key_ = keys[0];
  return ring;
}

Result<std::unique_ptr<Keyring>> Keyring::Load(const KeyringOptions& options) {
  std::unique_ptr<Keyring> ring(new Keyring());
  ring->options_ = options;
  std::error_code ec;
  if (!options.env_keys.empty()) {
    ring->from_env_ = true;
    std::string_view rest = options.env_keys;
    int n = 0;
    while (!rest.empty() || n == 0) {
      const size_t comma = rest.find(',');
      std::string_view part = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      ++n;
      auto key = ParseKeyHex(part, "LATHE_MASTER_KEY (key " + std::to_string(n) + ")");
      if (!key.ok()) return Status::FailedPrecondition(key.status().message());
      const std::string id = KeyId(*key);
      if (ring->active_id_.empty()) ring->active_id_ = ring->primary_id_ = id;
      ring->keys_[id] = *key;
      if (comma == std::string_view::npos) break;
    }
  } else {
    ASSIGN_OR_RETURN(std::string primary, LoadOrCreateKeyFile(options.key_file));
    ring->primary_id_ = ring->active_id_ = KeyId(primary);
    ring->keys_[ring->primary_id_] = primary;
    if (!options.state_dir.empty() && fs::is_directory(options.state_dir, ec)) {
      for (const auto& e : fs::directory_iterator(options.state_dir, ec)) {
        if (e.path().extension() != ".key") continue;
        ASSIGN_OR_RETURN(std::string text, ReadFile(e.path().string(), 4096));
        auto key = ParseKeyHex(text, "key file " + e.path().string());
        if (!key.ok()) return Status::FailedPrecondition(key.status().message());
        ring->keys_[KeyId(*key)] = *key;
      }
      const std::string active_path = (fs::path(options.state_dir) / "active").string();
      if (fs::exists(active_path, ec)) {
        ASSIGN_OR_RETURN(std::string text, ReadFile(active_path, 256));
        const std::string id = Trim(text);
        if (ring->keys_.count(id)) {
          ring->active_id_ = id;
        } else {
          LogWarn("the active master key named in " + active_path + " is not in the keyring; the primary key "
                  "is active", {{"key_id", id.substr(0, 16)}, {"primary", ring->primary_id_}});
        }
      }
    }
  }
  ring->pii_key_ = ring->keys_[ring->primary_id_];
  if (!options.state_dir.empty()) {
    const std::string pii_path = (fs::path(options.state_dir) / "pii.sealed").string();
    if (fs::exists(pii_path, ec)) {
      ASSIGN_OR_RETURN(std::string text, ReadFile(pii_path, 4096));
      const std::string t = Trim(text);
      const size_t colon = t.find(':');
      auto sealed = HexToBytes(colon == std::string::npos ? "" : t.substr(colon + 1));
      if (colon == std::string::npos || !sealed.ok()) {
        return Status::FailedPrecondition(pii_path + " is malformed (expected KEYID:HEX)");
      }
      auto pii = ring->Open(SealedValue{t.substr(0, colon), *sealed}, kPiiAad);
      if (!pii.ok()) {
        return Status::FailedPrecondition(pii_path + " cannot be opened with the master keys from " +
                                          ring->SourceName() + ": " + pii.status().message() +
                                          ". Supply the key that rotation last made active (LATHE_MASTER_KEY may "
                                          "list several keys, comma-separated)");
      }
      ring->pii_key_ = *pii;
    }
  }
  return ring;
}

std::string Keyring::SourceName() const {
  return from_env_ ? std::string("LATHE_MASTER_KEY") : options_.key_file;
}

MasterKey Keyring::Active() const {
  std::shared_lock lock(mu_);
  return MasterKey{active_id_, keys_.at(active_id_)};
}

Result<std::string> Keyring::Find(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = keys_.find(id);
  if (it != keys_.end()) return it->second;
  std::string held;
  for (const auto& [k, v] : keys_) held += (held.empty() ? "" : ", ") + k;
  std::string shown;
  for (char c : id.substr(0, 16)) shown.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '?');
  return Status::DataLoss("unknown master key id " + shown + " (this server holds: " + held + ")");
}

std::vector<std::string> Keyring::Ids() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : keys_) out.push_back(k);
  return out;
}

std::string Keyring::PiiKey() const {
  std::shared_lock lock(mu_);
  return pii_key_;
}

Result<SealedValue> Keyring::Seal(std::string_view plaintext, std::string_view aad) const {
  MasterKey k = Active();
  ASSIGN_OR_RETURN(std::string sealed, EncryptAesGcm(k.key, plaintext, aad));
  return SealedValue{k.id, std::move(sealed)};
}

Result<std::string> Keyring::Open(const SealedValue& value, std::string_view aad) const {
  if (!value.key_id.empty()) {
    ASSIGN_OR_RETURN(std::string key, Find(value.key_id));
    return DecryptAesGcm(key, value.sealed, aad);
  }
  std::vector<std::string> keys;
  {
    std::shared_lock lock(mu_);
    for (const auto& [id, key] : keys_) keys.push_back(key);
  }
  for (const auto& key : keys) {
    auto plain = DecryptAesGcm(key, value.sealed, aad);
    if (plain.ok()) return plain;
  }
  return Status::DataLoss("authentication failed");
}

Status Keyring::WritePiiSealed() {
  if (options_.state_dir.empty()) return Status::Ok();
  std::error_code ec;
  fs::create_directories(options_.state_dir, ec);
  if (ec) return Status::Internal("creating " + options_.state_dir + ": " + ec.message());
  ::chmod(options_.state_dir.c_str(), 0700);
  ASSIGN_OR_RETURN(std::string sealed, EncryptAesGcm(keys_.at(active_id_), pii_key_, kPiiAad));
  return WriteFileAtomic((fs::path(options_.state_dir) / "pii.sealed").string(),
                         active_id_ + ":" + HexEncode(sealed) + "\n");
}

Result<std::string> Keyring::AddActive(const std::string& key) {
  if (key.size() != kAesGcmKeyBytes) return Status::InvalidArgument("a master key is 32 bytes");
  const std::string id = KeyId(key);
  std::unique_lock lock(mu_);
  const std::string previous = active_id_;
  const bool known = keys_.count(id) > 0;
  keys_[id] = key;
  active_id_ = id;
  // Persist before any write uses the key: a crash must never leave data wrapped under a key that is lost.
  Status st;
  if (!from_env_ && !options_.state_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options_.state_dir, ec);
    ::chmod(options_.state_dir.c_str(), 0700);
    if (ec) st = Status::Internal("creating " + options_.state_dir + ": " + ec.message());
    if (st.ok() && id != primary_id_) st = WriteKeyFile((fs::path(options_.state_dir) / (id + ".key")).string(), key);
    if (st.ok()) st = WritePiiSealed();
    if (st.ok()) st = WriteFileAtomic((fs::path(options_.state_dir) / "active").string(), id + "\n");
  } else {
    st = WritePiiSealed();
  }
  if (!st.ok()) {
    active_id_ = previous;
    if (!known) keys_.erase(id);
    return st.Annotate("saving the new master key");
  }
  return id;
}

Result<std::vector<std::string>> Keyring::RetireInactive(bool keep_old) {
  std::unique_lock lock(mu_);
  std::vector<std::string> notes;
  const std::string active = active_id_;
  if (!from_env_ && !options_.state_dir.empty()) {
    const fs::path dir(options_.state_dir);
    std::error_code ec;
    if (active != primary_id_) {
      // The primary key file takes the active key, so a plain restart reads it; an old primary kept with
      // keep_old moves to keys/ first.
      if (keep_old) RETURN_IF_ERROR(WriteKeyFile((dir / (primary_id_ + ".key")).string(), keys_.at(primary_id_)));
      Status st = WriteKeyFile(options_.key_file, keys_.at(active));
      if (st.ok()) {
        primary_id_ = active;
        fs::remove(dir / (active + ".key"), ec);
      } else {
        notes.push_back("could not replace the master key file " + options_.key_file + " (" + st.message() +
                        "); the active key stays in " + (dir / (active + ".key")).string() +
                        " — copy it into the master key file");
        keep_old = true;  // the old primary is still in the key file: it cannot be retired from disk
      }
    }
    if (!keep_old) {
      for (const auto& [id, key] : keys_) {
        if (id != active) fs::remove(dir / (id + ".key"), ec);
      }
    }
    if (primary_id_ == active) fs::remove(dir / "active", ec);
    RETURN_IF_ERROR(FsyncDirectory(options_.state_dir));
  }
  if (!keep_old) {
    for (auto it = keys_.begin(); it != keys_.end();) {
      it = it->first == active ? std::next(it) : keys_.erase(it);
    }
  }
  if (from_env_ && !options_.state_dir.empty()) {
    notes.push_back("the master keys come from LATHE_MASTER_KEY: set it to the new key (id " + active +
                    ") before the next restart" +
                    (keep_old ? std::string(", followed by the old keys (comma-separated) to keep them readable")
                              : std::string()));
  }
  return notes;
}

}  // namespace lathe
