// Import sources and saved connections (see data_sources.h), with the /connections routes.
#include "api/data_sources.h"

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "data/http_source.h"
#include "data/sql_source.h"

namespace lathe {

namespace {

constexpr const char* kConnectionKind = "connection";

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

Result<std::string> HexDecode(const std::string& hex) {
  if (hex.size() % 2) return Status::DataLoss("sealed secret is not hex");
  std::string out;
  out.reserve(hex.size() / 2);
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nib(hex[i]), lo = nib(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status::DataLoss("sealed secret is not hex");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// Secrets are sealed with the project as associated data, so a sealed blob cannot be replayed elsewhere. The
// holder records the master key id ("sealed_key") so rotation can re-seal it; values saved before key ids
// were recorded have none and are opened by trying each key in the ring.
Status SealInto(App& app, const std::string& project, const Json& secrets, Json& holder) {
  ASSIGN_OR_RETURN(SealedValue sealed, app.keyring().Seal(DumpJson(secrets), "lathe-source:" + project));
  holder["sealed"] = HexEncode(sealed.sealed);
  holder["sealed_key"] = sealed.key_id;
  return Status::Ok();
}

Result<Json> Unseal(App& app, const std::string& project, const Json& holder) {
  if (!holder.contains("sealed")) return Json::object();
  ASSIGN_OR_RETURN(std::string raw, HexDecode(holder.value("sealed", std::string())));
  const std::string key_id = holder.value("sealed_key", std::string());
  auto plain = app.keyring().Open(SealedValue{key_id, raw}, "lathe-source:" + project);
  if (!plain.ok()) {
    if (!key_id.empty() && !app.keyring().Find(key_id).ok()) {
      return Status::FailedPrecondition("the stored secret is sealed under master key id " + key_id +
                                        ", which this server does not hold; start it with that key in the "
                                        "keyring, or save the connection again");
    }
    return Status::FailedPrecondition(
        "the stored secret cannot be decrypted (authentication failed): the master key changed since it was "
        "saved, or the stored value was modified; save the connection again");
  }
  return ParseJson(*plain, 8);
}

bool Known(const std::string& key, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (key == k) return true;
  }
  return false;
}

// Splits a source (inline or connection definition) into its non-secret config and its secrets, validating
// every field. `for_connection` allows omitting the query/url (given per import).
Result<std::pair<Json, Json>> SplitSource(App& app, const Json& s, bool for_connection) {
  if (!s.is_object()) return FieldError("source", "must be an object");
  const std::string kind = s.value("kind", std::string());
  Json config = Json::object(), secrets = Json::object();
  if (kind == "postgres" || kind == "sqlite") {
    for (const auto& [k, v] : s.items()) {
      if (!Known(k, {"kind", "name", "dsn", "path", "password", "query", "timeout_ms", "max_rows"})) {
        return FieldError("source." + k.substr(0, 40), "is not a field of a " + kind + " source");
      }
    }
    SqlSource sql;
    sql.kind = kind;
    if (kind == "postgres") {
      sql.dsn = s.value("dsn", std::string());
      if (sql.dsn.empty()) return FieldError("source.dsn", "is required (e.g. \"host=db dbname=shop user=reader\")");
      if (sql.dsn.find("password") != std::string::npos) {
        return FieldError("source.dsn", "must not contain the password; send it as source.password (stored encrypted)");
      }
      config["dsn"] = sql.dsn;
      if (s.contains("password")) {
        if (!s["password"].is_string()) return FieldError("source.password", "must be a string");
        secrets["password"] = s["password"];
      }
    } else {
      sql.dsn = s.value("path", std::string());
      if (sql.dsn.empty()) return FieldError("source.path", "is required (a file under --sqlite-dir)");
      config["path"] = sql.dsn;
    }
    sql.query = s.value("query", std::string());
    if (sql.query.empty() && !for_connection) return FieldError("source.query", "is required");
    if (!sql.query.empty()) config["query"] = sql.query;
    sql.timeout_ms = GetIntOr(s, "timeout_ms", sql.timeout_ms);
    sql.max_rows = GetIntOr(s, "max_rows", sql.max_rows);
    if (sql.timeout_ms < 100 || sql.timeout_ms > 86400000) return FieldError("source.timeout_ms", "must be 100..86400000");
    if (sql.max_rows < 1) return FieldError("source.max_rows", "must be positive");
    config["timeout_ms"] = sql.timeout_ms;
    config["max_rows"] = sql.max_rows;
    if (!sql.query.empty()) {
      Status st = CheckSqlSource(sql, app.config().sqlite_dir);
      if (!st.ok()) return st;
    }
  } else if (kind == "http") {
    for (const auto& [k, v] : s.items()) {
      if (!Known(k, {"kind", "name", "url", "headers", "format", "records_pointer", "pagination", "timeout_ms",
                     "max_bytes"})) {
        return FieldError("source." + k.substr(0, 40), "is not a field of an http source");
      }
    }
    HttpSource http;
    http.url = s.value("url", std::string());
    if (http.url.empty() && !for_connection) return FieldError("source.url", "is required");
    if (s.contains("headers")) {
      if (!s["headers"].is_object()) return FieldError("source.headers", "must be an object of header name to value");
      for (const auto& [name, value] : s["headers"].items()) {
        if (!value.is_string()) return FieldError("source.headers." + name, "must be a string");
        http.headers.emplace_back(name, value.get<std::string>());
      }
      secrets["headers"] = s["headers"];
    }
    http.format = s.value("format", std::string("auto"));
    http.records_pointer = s.value("records_pointer", std::string());
    if (s.contains("pagination")) {
      const Json& p = s["pagination"];
      if (!p.is_object()) return FieldError("source.pagination", "must be an object");
      http.pagination.kind = p.value("kind", std::string("none"));
      http.pagination.page_param = p.value("page_param", std::string("page"));
      http.pagination.start_page = GetIntOr(p, "start_page", 1);
      http.pagination.next_pointer = p.value("next_pointer", std::string());
      http.pagination.max_pages = GetIntOr(p, "max_pages", 100);
      config["pagination"] = p;
    }
    http.timeout_ms = GetIntOr(s, "timeout_ms", http.timeout_ms);
    http.max_bytes = GetIntOr(s, "max_bytes", http.max_bytes);
    if (!http.url.empty()) config["url"] = http.url;
    config["format"] = http.format;
    config["records_pointer"] = http.records_pointer;
    config["timeout_ms"] = http.timeout_ms;
    config["max_bytes"] = http.max_bytes;
    if (!http.url.empty() || !for_connection) RETURN_IF_ERROR(CheckHttpSource(http));
  } else {
    return FieldError("source.kind", "must be postgres, sqlite or http");
  }
  config["kind"] = kind;
  return std::make_pair(config, secrets);
}

SqlSource SqlFromConfig(const Json& config, const Json& secrets) {
  SqlSource sql;
  sql.kind = config.value("kind", std::string());
  sql.dsn = sql.kind == "postgres" ? config.value("dsn", std::string()) : config.value("path", std::string());
  sql.query = config.value("query", std::string());
  sql.timeout_ms = GetIntOr(config, "timeout_ms", sql.timeout_ms);
  sql.max_rows = GetIntOr(config, "max_rows", sql.max_rows);
  if (sql.kind == "postgres" && secrets.contains("password")) {
    // libpq conninfo value quoting: single quotes, with \ and ' escaped.
    std::string pw;
    for (char c : secrets["password"].get<std::string>()) {
      if (c == '\\' || c == '\'') pw.push_back('\\');
      pw.push_back(c);
    }
    const bool uri = sql.dsn.rfind("postgres://", 0) == 0 || sql.dsn.rfind("postgresql://", 0) == 0;
    if (uri) {
      std::string enc;
      for (unsigned char c : secrets["password"].get<std::string>()) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
          enc.push_back(static_cast<char>(c));
        } else {
          char buf[4];
          std::snprintf(buf, sizeof(buf), "%%%02X", c);
          enc += buf;
        }
      }
      sql.dsn += (sql.dsn.find('?') == std::string::npos ? "?password=" : "&password=") + enc;
    } else {
      sql.dsn += " password='" + pw + "'";
    }
  }
  return sql;
}

HttpSource HttpFromConfig(const Json& config, const Json& secrets) {
  HttpSource http;
  http.url = config.value("url", std::string());
  http.format = config.value("format", std::string("auto"));
  http.records_pointer = config.value("records_pointer", std::string());
  http.timeout_ms = GetIntOr(config, "timeout_ms", http.timeout_ms);
  http.max_bytes = GetIntOr(config, "max_bytes", http.max_bytes);
  if (config.contains("pagination")) {
    const Json& p = config["pagination"];
    http.pagination.kind = p.value("kind", std::string("none"));
    http.pagination.page_param = p.value("page_param", std::string("page"));
    http.pagination.start_page = GetIntOr(p, "start_page", 1);
    http.pagination.next_pointer = p.value("next_pointer", std::string());
    http.pagination.max_pages = GetIntOr(p, "max_pages", 100);
  }
  if (secrets.contains("headers")) {
    for (const auto& [name, value] : secrets["headers"].items()) http.headers.emplace_back(name, value.get<std::string>());
  }
  return http;
}

// What a connection shows: its config and which secrets it holds, never their values.
Json ConnectionJson(const DocumentRecord& doc) {
  Json j = doc.body.value("config", Json::object());
  j["name"] = doc.name;
  j["version"] = doc.version;
  j["has_password"] = doc.body.value("has_password", false);
  j["header_names"] = doc.body.value("header_names", Json::array());
  j["updated_at"] = FormatRfc3339(doc.created_at);
  return j;
}

}  // namespace

Result<Json> PrepareSourcePayload(App& app, const std::string& project, const Json& source) {
  if (!source.is_object()) return FieldError("source", "must be an object");
  if (source.contains("connection")) {
    if (!source["connection"].is_string()) return FieldError("source.connection", "must be a connection name");
    const std::string name = source["connection"].get<std::string>();
    ASSIGN_OR_RETURN(DocumentRecord doc, app.store().GetDocument(project, kConnectionKind, name, 0));
    Json config = doc.body.value("config", Json::object());
    Json out = {{"connection", name}};
    for (const auto& [k, v] : source.items()) {
      if (k == "connection") continue;
      if (k == "query" && (config["kind"] == "postgres" || config["kind"] == "sqlite")) {
        if (!v.is_string() || v.get<std::string>().empty()) return FieldError("source.query", "must be a SQL query");
        out["query"] = v;
      } else if (k == "url" && config["kind"] == "http") {
        if (!v.is_string()) return FieldError("source.url", "must be a URL");
        out["url"] = v;
      } else {
        return FieldError("source." + k.substr(0, 40), "cannot be set per import for a " +
                                                           config.value("kind", std::string()) + " connection");
      }
    }
    const std::string kind = config.value("kind", std::string());
    if ((kind == "postgres" || kind == "sqlite") && !out.contains("query") && !config.contains("query")) {
      return FieldError("source.query", "is required: connection '" + name + "' has no default query");
    }
    if (kind == "http" && !out.contains("url") && !config.contains("url")) {
      return FieldError("source.url", "is required: connection '" + name + "' has no URL");
    }
    return out;
  }
  ASSIGN_OR_RETURN(auto split, SplitSource(app, source, false));
  Json out = {{"config", split.first}};
  if (!split.second.empty()) RETURN_IF_ERROR(SealInto(app, project, split.second, out));
  return out;
}

Result<FetchedSource> FetchSource(App& app, const std::string& project, const Json& prepared,
                                  const std::string& spool_path, const std::function<bool()>& cancel) {
  Json config, secrets;
  Json shown = Json::object();
  if (prepared.contains("connection")) {
    const std::string name = prepared.value("connection", std::string());
    ASSIGN_OR_RETURN(DocumentRecord doc, app.store().GetDocument(project, kConnectionKind, name, 0));
    config = doc.body.value("config", Json::object());
    ASSIGN_OR_RETURN(secrets, Unseal(app, project, doc.body));
    if (prepared.contains("query")) config["query"] = prepared["query"];
    if (prepared.contains("url")) config["url"] = prepared["url"];
    shown["connection"] = name;
  } else {
    config = prepared.value("config", Json::object());
    ASSIGN_OR_RETURN(secrets, Unseal(app, project, prepared));
  }
  const std::string kind = config.value("kind", std::string());
  shown["kind"] = kind;
  FetchedSource out;
  if (kind == "postgres" || kind == "sqlite") {
    SqlSource sql = SqlFromConfig(config, secrets);
    ASSIGN_OR_RETURN(out.fetch, FetchSql(sql, app.config().sqlite_dir, spool_path, cancel));
  } else if (kind == "http") {
    HttpSource http = HttpFromConfig(config, secrets);
    http.addresses = app.config().http_source_addresses;
    ASSIGN_OR_RETURN(out.fetch, FetchHttp(http, spool_path, cancel));
  } else {
    return Status::InvalidArgument("unknown source kind '" + kind + "'");
  }
  for (const auto& [k, v] : out.fetch.info.items()) shown[k] = v;
  shown["rows_fetched"] = out.fetch.rows;
  shown["bytes_fetched"] = out.fetch.bytes;
  out.shown = std::move(shown);
  return out;
}

Result<int64_t> ResealStoredSecrets(App& app, const std::function<bool()>& cancelled) {
  const std::string active = app.keyring().Active().id;
  ASSIGN_OR_RETURN(auto projects, app.store().ListProjects());
  int64_t resealed = 0;
  for (const auto& project : projects) {
    ASSIGN_OR_RETURN(auto latest, app.store().ListDocuments(project, kConnectionKind));
    for (const auto& doc : latest) {
      ASSIGN_OR_RETURN(auto versions, app.store().ListDocumentVersions(project, kConnectionKind, doc.name));
      for (const auto& v : versions) {
        if (cancelled()) return Status::Cancelled("re-sealing stored secrets was cancelled");
        if (!v.body.contains("sealed") || v.body.value("sealed_key", std::string()) == active) continue;
        auto secrets = Unseal(app, project, v.body);
        if (!secrets.ok()) {
          return secrets.status().Annotate("connection '" + v.name + "' version " + std::to_string(v.version) +
                                           " in project '" + project + "'");
        }
        Json body = v.body;
        RETURN_IF_ERROR(SealInto(app, project, *secrets, body));
        RETURN_IF_ERROR(app.store().ReplaceDocumentBody(project, kConnectionKind, v.name, v.version, body));
        ++resealed;
      }
    }
  }
  return resealed;
}

void RegisterConnectionRoutes(Router& router, App& app) {
  const std::string base = "/api/v1/projects/{project}/connections";
  router.Add({.method = "PUT", .pattern = base + "/{name}", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(CheckName(ctx.Param("name"), "name"));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(auto split, SplitSource(app, body, true));
                DocumentRecord doc{.project = ctx.Project(), .kind = kConnectionKind, .name = ctx.Param("name"),
                                   .created_by = ctx.caller.user_id, .created_at = NowMicros()};
                doc.body = {{"config", split.first}, {"has_password", split.second.contains("password")}};
                Json header_names = Json::array();
                if (split.second.contains("headers")) {
                  for (const auto& [n, v] : split.second["headers"].items()) header_names.push_back(n);
                }
                doc.body["header_names"] = header_names;
                if (!split.second.empty()) RETURN_IF_ERROR(SealInto(app, ctx.Project(), split.second, doc.body));
                ASSIGN_OR_RETURN(doc.version, app.store().PutDocument(doc));
                WriteJson(200, ConnectionJson(doc), ctx.res);
                return Status::Ok();
              },
              .summary = "Create or replace a saved connection (PostgreSQL, SQLite file or HTTP); secrets are "
                         "stored encrypted and never returned",
              .tag = "connections",
              .request_example = {{"kind", "postgres"}, {"dsn", "host=db.internal dbname=shop user=reader"},
                                  {"password", "…"}, {"timeout_ms", 30000}}});
  router.Add({.method = "GET", .pattern = base, .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto docs, app.store().ListDocuments(ctx.Project(), kConnectionKind));
                Json out = Json::array();
                for (const auto& d : docs) out.push_back(ConnectionJson(d));
                WriteJson(200, {{"connections", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List saved connections (without secrets)", .tag = "connections"});
  router.Add({.method = "GET", .pattern = base + "/{name}", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto doc, app.store().GetDocument(ctx.Project(), kConnectionKind, ctx.Param("name"), 0));
                WriteJson(200, ConnectionJson(doc), ctx.res);
                return Status::Ok();
              },
              .summary = "One saved connection (without secrets)", .tag = "connections"});
  router.Add({.method = "DELETE", .pattern = base + "/{name}", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().DeleteDocument(ctx.Project(), kConnectionKind, ctx.Param("name")));
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Delete a saved connection and its secrets", .tag = "connections", .success_status = 204});
}

}  // namespace lathe
