// Keyring: the master keys (32 bytes each) that wrap blob data keys (store/blob_store.h) and seal stored
// secrets (connection passwords, HTTP header values). One key is active: new writes use it; every key in the
// ring can still read. Rotation adds a key, makes it active, re-wraps everything, then retires the others.
//
// A key's id is the first 8 hex characters of SHA-256("lathe-key-id" || key): it is recorded next to every
// wrapped or sealed value so the right key is found without trial decryption, and reveals nothing useful.
//
// Where the keys come from (KeyringOptions):
//   environment  LATHE_MASTER_KEY="HEX[,HEX…]" (64 hex characters each). The first key is active; the others
//                are read-only (the old key while a rotation is under way). Keys never touch the disk: no key
//                file is created, and a key added by rotation lives in memory until the operator puts it first
//                in LATHE_MASTER_KEY.
//   key file     otherwise: the primary key file (default DATA_DIR/master.key, 64 hex, created with mode 0600
//                when absent), plus rotation state in DATA_DIR/keys/:
//                  <id>.key    a further key (64 hex, 0600) — the new key while a rotation is under way, or an
//                              old key kept with keep_old
//                  active      the id of the active key (absent = the primary key is active)
//                When a rotation finishes, the new key replaces the primary key file's content and keys/ holds
//                only the keys kept with keep_old.
// In both modes DATA_DIR/keys/pii.sealed holds the pseudonymisation key (PiiKey) sealed under the active key,
// written at the first rotation: hashed PII values and the models trained on them must not change when the
// encryption key does, so that secret is separate from the keys it is sealed with.
//
// Errors: a malformed key (file or environment) is kFailedPrecondition naming where it came from; a value
// sealed under a key the ring does not hold is kDataLoss "unknown master key id …". Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lathe {

struct KeyringOptions {
  std::string key_file;   // the primary key file; created (0600) when absent and env_keys is empty
  std::string env_keys;   // the value of LATHE_MASTER_KEY; non-empty = keys come from here, the first is active
  std::string state_dir;  // DATA_DIR/keys: rotation state (see above); created when first needed
};

struct MasterKey {
  std::string id;   // 8 lower-case hex characters
  std::string key;  // 32 raw bytes
};

// A value sealed with AES-256-GCM (common/crypto.h layout) under the master key `key_id`.
struct SealedValue {
  std::string key_id;
  std::string sealed;
};

class Keyring {
 public:
  static Result<std::unique_ptr<Keyring>> Load(const KeyringOptions& options);
  // An in-memory ring (nothing persisted): `keys` are 32-byte keys, the first is active.
  static std::unique_ptr<Keyring> ForTest(const std::vector<std::string>& keys);

  static std::string KeyId(std::string_view key);
  // 64 hex characters (surrounding whitespace ignored) -> 32 bytes; kInvalidArgument naming `what` otherwise.
  static Result<std::string> ParseKeyHex(std::string_view text, const std::string& what);

  MasterKey Active() const;
  // kDataLoss "unknown master key id X (this server holds: a, b)" when the ring lacks it.
  Result<std::string> Find(const std::string& id) const;
  std::vector<std::string> Ids() const;
  bool from_environment() const { return from_env_; }
  // The secret that salts PII pseudonymisation (stable across rotations).
  std::string PiiKey() const;

  // Seals under the active key. Open with an empty key_id (values sealed before key ids were recorded) tries
  // every key. Wrong key, wrong aad or tampering -> kDataLoss "authentication failed".
  Result<SealedValue> Seal(std::string_view plaintext, std::string_view aad) const;
  Result<std::string> Open(const SealedValue& value, std::string_view aad) const;

  // Rotation, step 1: adds `key` (32 bytes; may already be in the ring) and makes it active for every write
  // from now on. Persists it (key-file mode) and re-seals the PII key under it. Returns its id.
  Result<std::string> AddActive(const std::string& key);
  // Rotation, last step (after every blob and secret was re-wrapped under the active key): drops every other
  // key from the ring and from disk, unless keep_old. Returns notes for the operator (e.g. a key file that
  // could not be replaced).
  Result<std::vector<std::string>> RetireInactive(bool keep_old);
  // Where the keys live, for messages: "LATHE_MASTER_KEY" or the key file's path.
  std::string SourceName() const;

 private:
  Keyring() = default;
  Status WritePiiSealed();  // requires mu_ held (exclusive)

  KeyringOptions options_;
  bool from_env_ = false;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::string> keys_;  // id -> key; guarded by mu_
  std::string active_id_;                    // guarded by mu_
  std::string primary_id_;                   // the key in the key file (or first in the environment)
  std::string pii_key_;                      // guarded by mu_
};

}  // namespace lathe
