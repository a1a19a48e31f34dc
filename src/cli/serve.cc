#include "cli/serve.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <thread>

#include <toml++/toml.h>

#include "api/app.h"
#include "common/log.h"
#include "server/http_server.h"
#include "server/tls.h"
#include "store/blob_store.h"

namespace lathe {

namespace {

struct ServeConfig {
  AppConfig app;
  ServerOptions server;
  std::string port_file;
  std::string log_level = "info";
  std::string config_file;
  bool tls_self_signed = false;
};

// One configuration knob: its flag name (also the toml key with '-' -> '_' and the env var
// LATHE_<NAME>), default, help, and how to apply a value.
struct Knob {
  std::string name;
  std::string default_value;
  std::string help;
  std::function<Status(const std::string&)> apply;
};

Result<int64_t> ParseIntValue(const std::string& name, const std::string& v, int64_t min, int64_t max) {
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= min && n <= max) return static_cast<int64_t>(n);
  } catch (...) {
  }
  return Status::InvalidArgument(name + " must be an integer from " + std::to_string(min) + " to " +
                                 std::to_string(max) + ", not '" + v + "'");
}

Result<bool> ParseBoolValue(const std::string& name, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return Status::InvalidArgument(name + " must be true or false, not '" + v + "'");
}

Status ParseListen(const std::string& v, ServerOptions* out) {
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("listen must be HOST:PORT (e.g. 127.0.0.1:8080), not '" + v + "'");
  }
  ASSIGN_OR_RETURN(int64_t port, ParseIntValue("listen port", v.substr(colon + 1), 0, 65535));
  out->host = v.substr(0, colon);
  if (out->host.size() > 2 && out->host.front() == '[' && out->host.back() == ']') {
    out->host = out->host.substr(1, out->host.size() - 2);
  }
  out->port = static_cast<uint16_t>(port);
  return Status::Ok();
}

std::vector<Knob> Knobs(ServeConfig* c) {
  auto int_knob = [](const std::string& name, auto* field, int64_t def, int64_t min, int64_t max,
                     const std::string& help) {
    return Knob{name, std::to_string(def), help, [=](const std::string& v) -> Status {
                  ASSIGN_OR_RETURN(int64_t n, ParseIntValue(name, v, min, max));
                  *field = static_cast<std::remove_pointer_t<decltype(field)>>(n);
                  return Status::Ok();
                }};
  };
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return {
      {"listen", "127.0.0.1:8080", "address to listen on, HOST:PORT; port 0 picks a free port",
       [c](const std::string& v) { return ParseListen(v, &c->server); }},
      {"port-file", "", "write the bound port to this file once listening",
       [c](const std::string& v) { c->port_file = v; return Status::Ok(); }},
      {"data-dir", "./lathe-data", "directory for metadata (SQLite) and blobs",
       [c](const std::string& v) { c->app.data_dir = v; return Status::Ok(); }},
      int_knob("io-threads", &c->server.io_threads, cores, 1, 256, "HTTP I/O threads"),
      int_knob("workers", &c->app.workers, 2, 1, 256, "concurrent background jobs (training, ...)"),
      int_knob("max-body-bytes", &c->server.max_body_bytes, 16 << 20, 1024, int64_t{1} << 32,
               "largest JSON request body (413 above)"),
      int_knob("max-upload-bytes", &c->app.max_upload_bytes, int64_t{16} << 30, 1024, int64_t{1} << 42,
               "largest dataset upload, streamed to disk (413 above)"),
      int_knob("max-header-bytes", &c->server.max_header_bytes, 16 * 1024, 1024, 1 << 20,
               "largest request header block (431 above)"),
      int_knob("max-json-depth", &c->app.max_json_depth, 64, 2, 1024, "deepest JSON nesting accepted (400 above)"),
      int_knob("max-predict-rows", &c->app.max_predict_rows, 10000, 1, 10000000, "instances per predict request"),
      int_knob("model-cache-mb", &c->app.model_cache_mb, 4096, 0, 16 << 20,
               "memory budget of loaded models; least recently used idle ones are unloaded (0 = no limit)"),
      int_knob("header-read-timeout-ms", &c->server.header_read_timeout_ms, 10000, 100, 3600000,
               "time to receive request headers (408 after)"),
      int_knob("request-timeout-ms", &c->server.request_timeout_ms, 300000, 100, 86400000,
               "time to receive a whole request body (408 after)"),
      int_knob("keepalive-timeout-ms", &c->server.keepalive_timeout_ms, 60000, 100, 3600000,
               "idle keep-alive connections are closed after this"),
      int_knob("token-ttl-s", &c->app.token_ttl_s, 7 * 24 * 3600, 1, 365 * 24 * 3600, "login token lifetime"),
      {"rate-limit-ip", "", "requests per second per client address, R or R/BURST (every route but health "
       "checks; empty = none)",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.rate_limit_ip, ParseRateLimit(v, "rate-limit-ip"));
         return Status::Ok();
       }},
      {"rate-limit-user", "", "requests per second per logged-in user, R or R/BURST (empty = none)",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.rate_limit_user, ParseRateLimit(v, "rate-limit-user"));
         return Status::Ok();
       }},
      {"rate-limit-key", "", "requests per second per API key, R or R/BURST (empty = none)",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.rate_limit_key, ParseRateLimit(v, "rate-limit-key"));
         return Status::Ok();
       }},
      {"metrics-public", "true", "serve GET /metrics without a token",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.metrics_public, ParseBoolValue("metrics-public", v));
         return Status::Ok();
       }},
      {"master-key-file", "", "file holding the 32-byte master key (64 hex chars) that encrypts stored secrets; "
       "empty = DATA_DIR/master.key, created on first start",
       [c](const std::string& v) { c->app.master_key_file = v; return Status::Ok(); }},
      {"audit-key-file", "", "file holding the audit log's 32-byte chain key (64 hex chars); empty = "
       "DATA_DIR/audit.key, created on first start",
       [c](const std::string& v) { c->app.audit_key_file = v; return Status::Ok(); }},
      {"oidc-issuer", "", "OpenID Connect provider for single sign-on, exactly as its discovery document names "
       "itself (empty = no single sign-on)",
       [c](const std::string& v) { c->app.oidc.issuer = v; return Status::Ok(); }},
      {"oidc-client-id", "", "this server's client id at the provider",
       [c](const std::string& v) { c->app.oidc.client_id = v; return Status::Ok(); }},
      {"oidc-client-secret", "", "the client secret (prefer the environment: LATHE_OIDC_CLIENT_SECRET)",
       [c](const std::string& v) { c->app.oidc.client_secret = v; return Status::Ok(); }},
      {"oidc-redirect-uri", "", "this server's callback as registered at the provider: "
       "https://HOST/api/v1/auth/oidc/callback",
       [c](const std::string& v) { c->app.oidc.redirect_uri = v; return Status::Ok(); }},
      {"oidc-scope", "openid profile email", "scopes asked for",
       [c](const std::string& v) { c->app.oidc.scope = v; return Status::Ok(); }},
      {"oidc-username-claim", "preferred_username", "ID token claim that names the lathe user",
       [c](const std::string& v) { c->app.oidc.username_claim = v; return Status::Ok(); }},
      {"oidc-groups-claim", "groups", "ID token claim listing the user's groups",
       [c](const std::string& v) { c->app.oidc.groups_claim = v; return Status::Ok(); }},
      {"oidc-admin-group", "", "members of this group are server admins (empty = single sign-on makes no admins)",
       [c](const std::string& v) { c->app.oidc.admin_group = v; return Status::Ok(); }},
      int_knob("oidc-jwks-min-refresh-s", &c->app.oidc.jwks_min_refresh_s, 30, 0, 86400,
               "a token signed by a key not in the cached set refetches the provider's keys at most this often"),
      {"oidc-role-map", "", "project roles from groups, synced at each login: GROUP=PROJECT:ROLE,...",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.oidc.role_map, ParseOidcRoleMap(v));
         return Status::Ok();
       }},
      {"prices", "", "price table for usage statements: METRIC=PRICE per unit, comma-separated (metrics: "
       "predictions, rows_scored, training_cpu_seconds, storage_gb_hours; unlisted = 0)",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.prices.price, ParsePrices(v));
         return Status::Ok();
       }},
      {"currency", "USD", "currency the price table is in",
       [c](const std::string& v) { c->app.prices.currency = v; return Status::Ok(); }},
      {"encrypt-blobs", "true", "encrypt blobs at rest with AES-256-GCM under the master key (LATHE_MASTER_KEY, "
       "when set, holds the keys instead of the key file; see docs/security.md)",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->app.encrypt_blobs, ParseBoolValue("encrypt-blobs", v));
         return Status::Ok();
       }},
      {"sqlite-dir", "", "directory whose SQLite files users may import from (empty = SQLite sources disabled)",
       [c](const std::string& v) { c->app.sqlite_dir = v; return Status::Ok(); }},
      {"tls-cert", "", "PEM certificate chain file: with --tls-key, serve HTTPS only (TLS 1.2+, HSTS)",
       [c](const std::string& v) { c->server.tls_cert_file = v; return Status::Ok(); }},
      {"tls-key", "", "PEM private key file for --tls-cert",
       [c](const std::string& v) { c->server.tls_key_file = v; return Status::Ok(); }},
      {"tls-self-signed", "false", "serve HTTPS with a self-signed certificate kept in DATA_DIR/tls "
       "(made on first start; give clients DATA_DIR/tls/self-signed.crt as their CA)",
       [c](const std::string& v) -> Status {
         ASSIGN_OR_RETURN(c->tls_self_signed, ParseBoolValue("tls-self-signed", v));
         return Status::Ok();
       }},
      {"http-source-allow", "", "address ranges HTTP data sources may reach besides public addresses: "
       "comma-separated CIDRs (10.0.0.0/8,fd00::/8) or 'any'; loopback, private, link-local and other "
       "special ranges are refused by default",
       [c](const std::string& v) -> Status {
         auto p = AddressPolicy::Parse(v);
         if (!p.ok()) return Status::InvalidArgument("http-source-allow: " + p.status().message());
         c->app.http_source_addresses = std::move(p).value();
         return Status::Ok();
       }},
      int_knob("import-wait-s", &c->app.import_wait_s, 3600, 0, 86400,
               "an upload waits this long for its import job before answering 202 with the job"),
      {"log-level", "info", "debug, info, warn or error",
       [c](const std::string& v) -> Status {
         if (v != "debug" && v != "info" && v != "warn" && v != "error") {
           return Status::InvalidArgument("log-level must be debug, info, warn or error");
         }
         c->log_level = v;
         return Status::Ok();
       }},
  };
}

std::string EnvName(const std::string& knob) {
  std::string e = "LATHE_";
  for (char ch : knob) e.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
  return e;
}

std::string TomlKey(const std::string& knob) {
  std::string k = knob;
  for (auto& ch : k) {
    if (ch == '-') ch = '_';
  }
  return k;
}

void PrintHelp(const std::vector<Knob>& knobs) {
  std::printf(
      "Usage: lathe serve [--config FILE] [--KNOB VALUE ...]\n\n"
      "Starts the lathe server. Each knob is read, later ones winning, from: the config file (lathe.toml in the\n"
      "current directory, or --config / LATHE_CONFIG; key = knob with '_'), the environment (LATHE_<KNOB>),\n"
      "and the command line (--knob VALUE or --knob=VALUE).\n"
      "The first start creates user 'admin' with LATHE_ADMIN_PASSWORD, or a random password printed once.\n\n"
      "Knobs (default in brackets):\n");
  for (const auto& k : knobs) {
    std::printf("  --%-24s %s [%s]\n", (k.name + " VALUE").c_str(), k.help.c_str(),
                k.default_value.empty() ? "none" : k.default_value.c_str());
  }
  std::printf("  --%-24s %s\n", "config FILE", "TOML config file [lathe.toml if present]");
}

Status LoadConfig(const std::vector<std::string>& args, ServeConfig* cfg, bool* help) {
  auto knobs = Knobs(cfg);
  for (const auto& k : knobs) {
    if (!k.default_value.empty()) RETURN_IF_ERROR(k.apply(k.default_value));
  }
  // Config file.
  std::string config_file;
  bool explicit_config = false;
  if (const char* e = std::getenv("LATHE_CONFIG")) {
    config_file = e;
    explicit_config = true;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_file = args[i + 1];
      explicit_config = true;
    } else if (args[i].rfind("--config=", 0) == 0) {
      config_file = args[i].substr(9);
      explicit_config = true;
    }
  }
  if (config_file.empty() && std::filesystem::exists("lathe.toml")) config_file = "lathe.toml";
  if (!config_file.empty()) {
    if (!std::filesystem::exists(config_file)) {
      if (explicit_config) return Status::InvalidArgument("config file " + config_file + " does not exist");
    } else {
      toml::table parsed;
      try {
        parsed = toml::parse_file(config_file);
      } catch (const toml::parse_error& err) {
        return Status::InvalidArgument("config file " + config_file + " line " +
                                       std::to_string(err.source().begin.line) + ": " +
                                       std::string(err.description()));
      }
      for (auto&& [key, node] : parsed) {
        std::string k(key.str());
        const Knob* knob = nullptr;
        for (const auto& kn : knobs) {
          if (TomlKey(kn.name) == k) knob = &kn;
        }
        if (!knob) return Status::InvalidArgument("config file " + config_file + ": unknown key '" + k + "'");
        std::string value;
        if (auto sv = node.template value<std::string>()) value = *sv;
        else if (auto iv = node.template value<int64_t>()) value = std::to_string(*iv);
        else if (auto bv = node.template value<bool>()) value = *bv ? "true" : "false";
        else return Status::InvalidArgument("config file " + config_file + ": '" + k + "' must be a string, integer or boolean");
        RETURN_IF_ERROR(knob->apply(value).Annotate("config file " + config_file));
      }
    }
  }
  // Environment.
  for (const auto& k : knobs) {
    if (const char* e = std::getenv(EnvName(k.name).c_str())) {
      RETURN_IF_ERROR(k.apply(e).Annotate(EnvName(k.name)));
    }
  }
  if (const char* p = std::getenv("LATHE_ADMIN_PASSWORD")) cfg->app.admin_password = p;
  if (const char* k = std::getenv("LATHE_MASTER_KEY")) cfg->app.master_key_env = k;
  // Flags.
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      *help = true;
      PrintHelp(knobs);
      return Status::Ok();
    }
    if (a.rfind("--", 0) != 0) return Status::InvalidArgument("unexpected argument '" + a + "'");
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Knob* knob = nullptr;
    for (const auto& kn : knobs) {
      if (kn.name == name) knob = &kn;
    }
    if (eq == std::string::npos) {
      // A boolean flag alone means true (--tls-self-signed); others take the next argument.
      const bool boolean = knob != nullptr && (knob->default_value == "true" || knob->default_value == "false");
      if (boolean && (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)) {
        value = "true";
      } else {
        if (i + 1 >= args.size()) return Status::InvalidArgument("--" + name + " needs a value");
        value = args[++i];
      }
    }
    if (name == "config") continue;
    if (!knob) return Status::InvalidArgument("unknown flag --" + name + " (see lathe serve --help)");
    RETURN_IF_ERROR(knob->apply(value).Annotate("--" + name));
  }
  cfg->app.max_body_bytes = cfg->server.max_body_bytes;
  cfg->server.spool_dir = (std::filesystem::path(cfg->app.data_dir) / "blobs" / "tmp").string();
  return Status::Ok();
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  ServeConfig cfg;
  bool help = false;
  Status st = LoadConfig(args, &cfg, &help);
  if (!st.ok()) {
    std::fprintf(stderr, "lathe serve: %s\n", st.message().c_str());
    return 2;
  }
  if (help) return 0;
  SetLogLevel(ParseLogLevel(cfg.log_level));

  // Signals are taken by one thread with sigwait; every other thread inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (cfg.tls_self_signed) {
    if (!cfg.server.tls_cert_file.empty() || !cfg.server.tls_key_file.empty()) {
      std::fprintf(stderr, "lathe serve: --tls-self-signed and --tls-cert/--tls-key exclude each other\n");
      return 2;
    }
    std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
    if (cfg.server.host != "127.0.0.1" && cfg.server.host != "0.0.0.0" && cfg.server.host != "::") {
      names.push_back(cfg.server.host);
    }
    auto files = EnsureSelfSignedFiles((std::filesystem::path(cfg.app.data_dir) / "tls").string(), names);
    if (!files.ok()) {
      LogError("lathe cannot make a self-signed certificate", {{"error", files.status().message()}});
      return 1;
    }
    cfg.server.tls_cert_file = files->cert_file;
    cfg.server.tls_key_file = files->key_file;
    LogInfo("tls: self-signed certificate", {{"cert", files->cert_file}});
  }

  auto app = App::Create(cfg.app);
  if (!app.ok()) {
    LogError("lathe cannot start", {{"error", app.status().message()}});
    return 1;
  }
  cfg.server.metrics = &(*app)->metrics();
  auto server = HttpServer::Create(cfg.server, app->get());
  if (!server.ok()) {
    LogError("lathe cannot listen", {{"error", server.status().message()}, {"host", cfg.server.host},
                                     {"port", cfg.server.port}});
    return 1;
  }
  st = (*app)->Start();
  if (!st.ok()) {
    LogError("lathe cannot start", {{"error", st.message()}});
    return 1;
  }
  uint16_t port = (*server)->port();
  if (!cfg.port_file.empty()) {
    Status w = WriteFileAtomic(cfg.port_file, std::to_string(port));
    if (!w.ok()) {
      LogError("cannot write port file", {{"error", w.message()}});
      return 1;
    }
  }
  const bool tls = !cfg.server.tls_cert_file.empty();
  LogInfo("lathe listening", {{"url", (tls ? "https://" : "http://") + cfg.server.host + ":" + std::to_string(port)},
                              {"port", port}, {"data_dir", cfg.app.data_dir}, {"io_threads", cfg.server.io_threads},
                              {"workers", cfg.app.workers}});

  HttpServer* srv = server->get();
  std::thread signal_thread([srv, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    LogInfo("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    srv->Stop();
  });
  srv->Run();
  // In-flight requests are done; now let running jobs finish their current step.
  (*app)->Stop();
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // no-op if it already returned
  signal_thread.join();
  LogInfo("lathe stopped");
  return 0;
}

}  // namespace lathe
