// External data sources for imports — PostgreSQL, SQLite files, HTTP(S) URLs — given inline in an import
// request or saved as named connections. Secrets (a database password, HTTP header values) are sealed with
// AES-256-GCM under the server's active master key (store/keyring.h) before they are stored anywhere (connection documents, job
// payloads) and are never returned by the API. Internal to the api layer.
//
// Source JSON (inline):
//   {"kind":"postgres","dsn":"host=db dbname=shop user=reader","password":"…","query":"SELECT …",
//    "timeout_ms":60000,"max_rows":10000000}
//   {"kind":"sqlite","path":"sales.db","query":"SELECT …"}            (path relative to --sqlite-dir)
//   {"kind":"http","url":"https://…","headers":{"Authorization":"Bearer …"},"format":"auto|csv|json|jsonl",
//    "records_pointer":"/data","pagination":{"kind":"none|link|page|cursor","page_param":"page",
//    "start_page":1,"next_pointer":"/next","max_pages":100},"timeout_ms":60000,"max_bytes":1073741824}
// or a saved connection plus per-import fields: {"connection":"warehouse","query":"SELECT …"} (SQL) or
// {"connection":"api","url":"https://…"} (HTTP; the URL replaces the saved one).
#pragma once

#include <functional>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "data/source_fetch.h"

namespace lathe {

class App;
class Router;

// Validates a source and returns the form stored in a job payload: secrets sealed, nothing in clear.
Result<Json> PrepareSourcePayload(App& app, const std::string& project, const Json& source);

struct FetchedSource {
  SourceFetch fetch;
  Json shown;  // the version's "source": kind, host/db/query or url, rows — never secrets
};

// Re-seals every stored secret (all versions of every saved connection) not yet sealed under the keyring's
// active master key; returns how many were re-sealed. For key rotation.
Result<int64_t> ResealStoredSecrets(App& app, const std::function<bool()>& cancelled);

// Fetches a prepared source into `spool_path`.
Result<FetchedSource> FetchSource(App& app, const std::string& project, const Json& prepared,
                                  const std::string& spool_path, const std::function<bool()>& cancel);

}  // namespace lathe
