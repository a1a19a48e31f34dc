#include "cli/client_data_args.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "cli/http_client.h"

namespace lathe::cli {

namespace {

std::string Trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string_view::npos) return "";
  size_t b = s.find_last_not_of(" \t");
  return std::string(s.substr(a, b - a + 1));
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The value, shortened and made printable, for an error message.
std::string Shown(const std::string& text) {
  std::string out;
  for (unsigned char c : text.substr(0, 80)) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return text.size() > 80 ? out + "…" : out;
}

Status OneOf(const std::string& flag, const std::string& value, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return Status::Ok();
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  return Status::InvalidArgument("--" + flag + " must be one of " + list + " (got '" + Shown(value) + "')");
}

bool IsAllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Canonical type name for a --hint type, or "" if unknown.
std::string CanonicalType(const std::string& t) {
  const std::string l = Lower(t);
  if (l == "integer" || l == "int") return "integer";
  if (l == "float" || l == "number" || l == "double") return "float";
  if (l == "boolean" || l == "bool") return "boolean";
  if (l == "string" || l == "text") return "string";
  if (l == "datetime" || l == "date") return "datetime";
  return "";
}

bool IsHeaderToken(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  static const std::string kSpecials = "!#$%&'*+-.^_`|~";
  for (unsigned char c : name) {
    if (!std::isalnum(c) && kSpecials.find(static_cast<char>(c)) == std::string::npos) return false;
  }
  return true;
}

}  // namespace

Result<DatasetRef> ParseDatasetRef(const std::string& text, bool require_version) {
  DatasetRef ref;
  const size_t at = text.rfind('@');
  ref.name = at == std::string::npos ? text : text.substr(0, at);
  if (ref.name.empty()) {
    return Status::InvalidArgument("expected a dataset NAME or NAME@VERSION, got '" + Shown(text) + "'");
  }
  if (at == std::string::npos) {
    if (require_version) {
      return Status::InvalidArgument("give the version as NAME@VERSION (e.g. " + Shown(text) +
                                     "@1); this command does not default to the latest version");
    }
    return ref;
  }
  const std::string v = text.substr(at + 1);
  if (v == "latest" && !require_version) {
    ref.explicit_version = true;
    return ref;
  }
  if (!IsAllDigits(v) || v.size() > 18 || std::stoll(v) < 1) {
    return Status::InvalidArgument("the version in '" + Shown(text) + "' must be a positive integer" +
                                   (require_version ? "" : " or 'latest'"));
  }
  ref.version = std::to_string(std::stoll(v));
  ref.explicit_version = true;
  return ref;
}

std::string VersionPath(const DatasetRef& ref) {
  return "/datasets/" + UrlEncode(ref.name) + "/versions/" + UrlEncode(ref.version);
}

Result<std::pair<std::string, std::string>> ParseKeyValue(const std::string& flag, const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return Status::InvalidArgument("--" + flag + " expects KEY=VALUE, got '" + Shown(text) + "'");
  }
  std::string key = Trim(text.substr(0, eq));
  if (key.empty()) return Status::InvalidArgument("--" + flag + " '" + Shown(text) + "' has an empty name");
  return std::make_pair(key, text.substr(eq + 1));
}

Result<char> ParseCharFlag(const std::string& flag, const std::string& text) {
  if (text.size() == 1) return text[0];
  const std::string l = Lower(text);
  if (l == "\\t" || l == "tab") return '\t';
  if (l == "\\\\") return '\\';
  if (l == "space") return ' ';
  if (l == "comma") return ',';
  if (l == "semicolon") return ';';
  if (l == "pipe") return '|';
  return Status::InvalidArgument("--" + flag +
                                 " expects one character (or tab, \\t, space, comma, semicolon, "
                                 "pipe), got '" +
                                 Shown(text) + "'");
}

Result<std::vector<std::string>> SplitList(const std::string& flag, const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    std::string item =
        Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.empty()) {
      return Status::InvalidArgument(
          "--" + flag + " expects a comma-separated list without empty items, got '" + Shown(text) + "'");
    }
    out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string FormatFromExtension(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = base.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  const std::string ext = Lower(base.substr(dot + 1));
  if (ext == "csv") return "csv";
  if (ext == "tsv" || ext == "tab") return "tsv";
  if (ext == "jsonl" || ext == "ndjson") return "jsonl";
  if (ext == "json") return "json";
  if (ext == "xlsx") return "xlsx";
  return "";
}

const std::vector<FlagSpec>& ImportSpecFlags() {
  static const std::vector<FlagSpec> kFlags = {
      {"format", "F", "csv|tsv|json|jsonl|xlsx (default: from the file extension, else detected)"},
      {"delimiter", "C", "CSV field delimiter: one character, or tab (default: detected)"},
      {"quote", "C", "CSV quote character, \" or ' (default: detected)"},
      {"header", "MODE", "auto|yes|no: whether the first CSV row names the columns (default: auto)"},
      {"encoding", "E", "text encoding: utf-8, gb18030, gbk, latin-1 (default: detected)"},
      {"sheet", "NAME", "XLSX sheet to read (default: the first)"},
      {"header-row", "N", "XLSX row holding the column names, 1-based; 0 = none (default: 1)"},
      {"layout", "L", "JSON layout: auto|lines|array (default: auto)"},
      {"bad-rows", "POLICY",
       "fail|skip|quarantine: what to do with rows that cannot be read (default: fail)"},
      {"max-bad-rows", "N", "fail the import when more rows than this are bad (default: 1000000)"},
      {"hint", "COL=TYPE", "force a column type: integer|float|boolean|string|datetime (repeatable)", true},
      {"date-format", "COL=FMT", "read COL as dates with a strptime pattern, e.g. date=%d/%m/%Y (repeatable)",
       true},
      {"decimal-comma", "", "read 3,14 and 1.234,5 as numbers (decimal comma)"},
      {"missing", "TOKEN", "spelling of a missing value; replaces the defaults (repeatable)", true},
  };
  return kFlags;
}

Result<Json> ImportSpecFromFlags(const ParsedArgs& a, const std::string& inferred_format) {
  Json spec = Json::object();
  std::string format = a.Get("format", inferred_format.empty() ? "auto" : inferred_format);
  format = Lower(format);
  RETURN_IF_ERROR(OneOf("format", format, {"auto", "csv", "tsv", "json", "jsonl", "xlsx"}));
  spec["format"] = format;
  const bool known = format != "auto";
  const bool is_text = format == "csv" || format == "tsv";
  auto only_for = [&](const char* flag, bool applies, const char* what) -> Status {
    if (a.Has(flag) && known && !applies) {
      return Status::InvalidArgument(std::string("--") + flag + " applies to " + what + " files, not " +
                                     format);
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(only_for("delimiter", is_text, "CSV/TSV"));
  RETURN_IF_ERROR(only_for("quote", is_text, "CSV/TSV"));
  RETURN_IF_ERROR(only_for("header", is_text, "CSV/TSV"));
  RETURN_IF_ERROR(only_for("encoding", is_text, "CSV/TSV"));
  RETURN_IF_ERROR(only_for("sheet", format == "xlsx", "XLSX"));
  RETURN_IF_ERROR(only_for("header-row", format == "xlsx", "XLSX"));
  RETURN_IF_ERROR(only_for("layout", format == "json" || format == "jsonl", "JSON"));

  Json csv = Json::object();
  if (auto d = a.GetOptional("delimiter")) {
    ASSIGN_OR_RETURN(char c, ParseCharFlag("delimiter", *d));
    if (c == '"' || c == '\n' || c == '\r')
      return Status::InvalidArgument("--delimiter cannot be a quote or newline");
    csv["delimiter"] = std::string(1, c);
  }
  if (auto q = a.GetOptional("quote")) {
    ASSIGN_OR_RETURN(char c, ParseCharFlag("quote", *q));
    if (csv.contains("delimiter") && csv["delimiter"] == std::string(1, c)) {
      return Status::InvalidArgument("--quote and --delimiter must differ");
    }
    csv["quote"] = std::string(1, c);
  }
  if (auto h = a.GetOptional("header")) {
    const std::string mode = Lower(*h);
    RETURN_IF_ERROR(OneOf("header", mode, {"auto", "yes", "no"}));
    csv["header"] = mode;
  }
  if (auto e = a.GetOptional("encoding")) {
    if (e->empty() || e->size() > 32) return Status::InvalidArgument("--encoding expects an encoding name");
    csv["encoding"] = Lower(*e);
  }
  if (!csv.empty()) spec["csv"] = csv;

  if (auto l = a.GetOptional("layout")) {
    const std::string layout = Lower(*l);
    RETURN_IF_ERROR(OneOf("layout", layout, {"auto", "lines", "array"}));
    spec["json"] = {{"layout", layout}};
  }
  Json xlsx = Json::object();
  if (auto s = a.GetOptional("sheet")) {
    if (s->empty()) return Status::InvalidArgument("--sheet expects a sheet name");
    xlsx["sheet"] = *s;
  }
  if (auto hr = a.GetOptional("header-row")) {
    ASSIGN_OR_RETURN(int64_t n, ParseIntFlag("header-row", *hr, 0, 1000));
    xlsx["header_row"] = n;
  }
  if (!xlsx.empty()) spec["xlsx"] = xlsx;

  if (auto b = a.GetOptional("bad-rows")) {
    const std::string policy = Lower(*b);
    RETURN_IF_ERROR(OneOf("bad-rows", policy, {"fail", "skip", "quarantine"}));
    spec["bad_rows"] = policy;
  }
  if (auto m = a.GetOptional("max-bad-rows")) {
    ASSIGN_OR_RETURN(int64_t n, ParseIntFlag("max-bad-rows", *m, 0, INT64_MAX / 2));
    if (!a.Has("bad-rows") || spec["bad_rows"] == "fail") {
      return Status::InvalidArgument("--max-bad-rows needs --bad-rows skip or --bad-rows quarantine");
    }
    spec["max_bad_rows"] = n;
  }

  Json hints = Json::object();
  Json types = Json::object();
  for (const auto& h : a.GetAll("hint")) {
    auto kv = ParseKeyValue("hint", h);
    if (!kv.ok())
      return Status::InvalidArgument(
          "--hint expects COL=TYPE (TYPE integer, float, boolean, string or "
          "datetime), got '" +
          Shown(h) + "'");
    const std::string type = CanonicalType(Trim(kv->second));
    if (type.empty()) {
      return Status::InvalidArgument("--hint " + Shown(h) + ": unknown type '" + Shown(kv->second) +
                                     "' (integer, float, boolean, string or datetime)");
    }
    if (types.contains(kv->first) && types[kv->first] != type) {
      return Status::InvalidArgument("--hint gives column '" + Shown(kv->first) + "' two types");
    }
    types[kv->first] = type;
  }
  if (!types.empty()) hints["types"] = types;
  Json dates = Json::object();
  for (const auto& d : a.GetAll("date-format")) {
    auto kv = ParseKeyValue("date-format", d);
    if (!kv.ok())
      return Status::InvalidArgument("--date-format expects COL=FORMAT (e.g. date=%d/%m/%Y), got '" +
                                     Shown(d) + "'");
    if (kv->second.empty() || kv->second.size() > 64) {
      return Status::InvalidArgument("--date-format " + Shown(d) + ": the format must be 1-64 characters");
    }
    if (types.contains(kv->first) && types[kv->first] != "datetime") {
      return Status::InvalidArgument("column '" + Shown(kv->first) +
                                     "' has a --date-format and a --hint of type " +
                                     types[kv->first].get<std::string>());
    }
    dates[kv->first] = kv->second;
  }
  if (!dates.empty()) hints["date_formats"] = dates;
  if (a.Has("decimal-comma")) {
    if (csv.contains("delimiter") && csv["delimiter"] == ",") {
      return Status::InvalidArgument("--decimal-comma cannot be used with --delimiter ','");
    }
    hints["decimal_comma"] = true;
  }
  const auto& missing = a.GetAll("missing");
  if (!missing.empty()) {
    if (missing.size() > 100) return Status::InvalidArgument("--missing may be given at most 100 times");
    for (const auto& m : missing) {
      if (m.size() > 64) return Status::InvalidArgument("--missing tokens are at most 64 characters");
    }
    hints["missing_tokens"] = missing;
  }
  if (!hints.empty()) spec["hints"] = hints;
  return spec;
}

Result<std::string> RowsQuery(const ParsedArgs& a) {
  ASSIGN_OR_RETURN(int64_t offset, ParseIntFlag("offset", a.Get("offset", "0"), 0, INT64_MAX / 2));
  ASSIGN_OR_RETURN(int64_t limit, ParseIntFlag("limit", a.Get("limit", "20"), 1, 100000));
  std::string q = "offset=" + std::to_string(offset) + "&limit=" + std::to_string(limit);
  if (auto s = a.GetOptional("sort")) {
    // "col", "-col", "col,-other"; each part names a column.
    auto parts = SplitList("sort", *s);
    if (!parts.ok())
      return Status::InvalidArgument("--sort expects COL[,-COL…] (a leading - sorts descending)");
    for (const auto& p : *parts) {
      if (p == "-" || p == "+") return Status::InvalidArgument("--sort: '" + p + "' names no column");
    }
    q += "&sort=" + UrlEncode(*s);
  }
  if (auto f = a.GetOptional("filter")) {
    if (Trim(*f).empty()) return Status::InvalidArgument("--filter expects an expression, e.g. \"age > 30\"");
    q += "&filter=" + UrlEncode(*f);
  }
  if (auto s = a.GetOptional("sample")) {
    ASSIGN_OR_RETURN(int64_t n, ParseIntFlag("sample", *s, 1, 1000000));
    q += "&sample=" + std::to_string(n);
  }
  if (auto s = a.GetOptional("seed")) {
    if (!a.Has("sample")) return Status::InvalidArgument("--seed only applies with --sample");
    ASSIGN_OR_RETURN(int64_t n, ParseIntFlag("seed", *s, 0, INT64_MAX));
    q += "&seed=" + std::to_string(n);
  }
  return q;
}

Result<std::pair<std::string, std::string>> ParseHeaderFlag(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("--header expects \"Name: value\", got '" + Shown(text) + "'");
  }
  std::string name = Trim(text.substr(0, colon));
  std::string value = Trim(text.substr(colon + 1));
  if (!IsHeaderToken(name))
    return Status::InvalidArgument("--header: '" + Shown(name) + "' is not a header name");
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Status::InvalidArgument("--header " + name + ": the value holds a control character");
    }
  }
  return std::make_pair(name, value);
}

Result<Json> ConnectionBody(const ParsedArgs& a, const std::optional<std::string>& password) {
  if (!a.Has("kind")) return Status::InvalidArgument("--kind is required: postgres, sqlite or http");
  const std::string kind = Lower(a.Get("kind"));
  RETURN_IF_ERROR(OneOf("kind", kind, {"postgres", "sqlite", "http"}));
  auto refuse = [&](std::initializer_list<const char*> flags) -> Status {
    for (const char* f : flags) {
      if (a.Has(f))
        return Status::InvalidArgument(std::string("--") + f + " does not apply to a " + kind +
                                       " connection");
    }
    return Status::Ok();
  };
  Json body = {{"kind", kind}};
  if (kind == "postgres") {
    RETURN_IF_ERROR(refuse({"path", "url", "header", "records-pointer", "format"}));
    const std::string dsn = a.Get("dsn");
    if (dsn.empty()) {
      return Status::InvalidArgument(
          "--dsn is required for postgres, e.g. --dsn \"host=db dbname=shop user=reader\"");
    }
    if (Lower(dsn).find("password") != std::string::npos) {
      return Status::InvalidArgument(
          "--dsn must not hold the password; pipe it to --password-stdin or set "
          "LATHE_SOURCE_PASSWORD (it is stored encrypted)");
    }
    body["dsn"] = dsn;
    if (password) body["password"] = *password;
  } else if (kind == "sqlite") {
    RETURN_IF_ERROR(refuse({"dsn", "url", "header", "records-pointer", "format", "password-stdin"}));
    const std::string path = a.Get("path");
    if (path.empty())
      return Status::InvalidArgument(
          "--path is required for sqlite (a file under the server's --sqlite-dir)");
    body["path"] = path;
  } else {
    RETURN_IF_ERROR(refuse({"dsn", "path", "query", "password-stdin"}));
    if (auto u = a.GetOptional("url")) {
      if (u->rfind("http://", 0) != 0 && u->rfind("https://", 0) != 0) {
        return Status::InvalidArgument("--url must start with http:// or https://");
      }
      body["url"] = *u;
    }
    Json headers = Json::object();
    for (const auto& h : a.GetAll("header")) {
      ASSIGN_OR_RETURN(auto kv, ParseHeaderFlag(h));
      headers[kv.first] = kv.second;
    }
    if (!headers.empty()) body["headers"] = headers;
    if (auto f = a.GetOptional("format")) {
      RETURN_IF_ERROR(OneOf("format", Lower(*f), {"auto", "csv", "json", "jsonl"}));
      body["format"] = Lower(*f);
    }
    if (auto p = a.GetOptional("records-pointer")) {
      if (!p->empty() && (*p)[0] != '/') {
        return Status::InvalidArgument("--records-pointer must be a JSON pointer such as /data");
      }
      body["records_pointer"] = *p;
    }
  }
  if (auto q = a.GetOptional("query")) {
    if (Trim(*q).empty()) return Status::InvalidArgument("--query must not be empty");
    body["query"] = *q;
  }
  if (auto t = a.GetOptional("timeout-ms")) {
    ASSIGN_OR_RETURN(int64_t ms, ParseIntFlag("timeout-ms", *t, 100, 86400000));
    body["timeout_ms"] = ms;
  }
  return body;
}

Result<Json> ParseSourceJson(std::string_view text) {
  auto doc = ParseJson(text, 16);
  if (!doc.ok()) return Status::InvalidArgument("--source is not valid JSON: " + doc.status().message());
  if (!doc->is_object()) return Status::InvalidArgument("--source must be a JSON object");
  if (!doc->contains("kind") && !doc->contains("connection")) {
    return Status::InvalidArgument("--source needs a \"kind\" (postgres, sqlite, http) or a \"connection\"");
  }
  if (doc->contains("password")) {
    return Status::InvalidArgument(
        "--source must not hold the password (it would stay in the shell history); "
        "pipe it to --password-stdin or set LATHE_SOURCE_PASSWORD");
  }
  return std::move(*doc);
}

Result<Json> ParseLabelAssignment(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos)
    return Status::InvalidArgument("expected ROW=LABEL, got '" + Shown(text) + "'");
  const std::string row = Trim(text.substr(0, eq));
  const std::string label = text.substr(eq + 1);
  if (!IsAllDigits(row) || row.size() > 18) {
    return Status::InvalidArgument("in '" + Shown(text) +
                                   "' the row must be a row number (from `lathe labels next`)");
  }
  if (label.empty()) return Status::InvalidArgument("in '" + Shown(text) + "' the label is empty");
  return Json{{"row", std::stoll(row)}, {"label", label}};
}

Result<Json> ParseStepsDocument(std::string_view text) {
  auto doc = ParseJson(text, 64);
  if (!doc.ok()) return Status::InvalidArgument("the steps are not valid JSON: " + doc.status().message());
  Json steps;
  if (doc->is_array()) {
    steps = std::move(*doc);
  } else if (doc->is_object() && doc->contains("steps") && (*doc)["steps"].is_array()) {
    steps = std::move((*doc)["steps"]);
  } else {
    return Status::InvalidArgument(
        "the steps must be a JSON array of steps, or an object with a \"steps\" array");
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].is_object() || !steps[i].contains("op") || !steps[i]["op"].is_string()) {
      return Status::InvalidArgument("step " + std::to_string(i + 1) + " must be an object with an \"op\"")
          .WithDetail(
              ErrorDetail::Field("steps[" + std::to_string(i) + "]", "must be {\"op\": …, \"params\": {…}}"));
    }
  }
  return steps;
}

bool ChangesDatasetSettings(const ParsedArgs& a) {
  for (const char* f : {"set", "target", "contract", "no-contract", "enforce", "no-enforce", "tag",
                        "retention-days", "description"}) {
    if (a.Has(f)) return true;
  }
  return false;
}

Result<Json> MergeDatasetSettings(Json current, const ParsedArgs& a, const std::optional<Json>& contract) {
  if (a.Has("set")) {
    for (const char* f : {"target", "contract", "no-contract", "enforce", "no-enforce", "tag",
                          "retention-days", "description"}) {
      if (a.Has(f)) return Status::InvalidArgument(std::string("--set replaces all settings; drop --") + f);
    }
    auto doc = ParseJson(a.Get("set"), 64);
    if (!doc.ok()) return Status::InvalidArgument("--set is not valid JSON: " + doc.status().message());
    if (!doc->is_object()) return Status::InvalidArgument("--set must be a JSON object");
    return std::move(*doc);
  }
  if (!current.is_object()) current = Json::object();
  // Only settable keys go back (the GET may carry more in future).
  Json out = Json::object();
  for (const char* k : {"target", "contract", "enforce_contract", "tags", "retention_days", "description"}) {
    if (current.contains(k)) out[k] = current[k];
  }
  if (auto t = a.GetOptional("target")) out["target"] = t->empty() ? Json(nullptr) : Json(*t);
  if (a.Has("contract") && a.Has("no-contract")) {
    return Status::InvalidArgument("give --contract or --no-contract, not both");
  }
  if (contract) {
    if (!contract->is_object()) return Status::InvalidArgument("the contract must be a JSON object");
    // A file holding {"contract": {...}} (as returned by `datasets settings --json`) works too.
    out["contract"] = contract->contains("contract") && (*contract)["contract"].is_object()
                          ? (*contract)["contract"]
                          : *contract;
  }
  if (a.Has("no-contract")) {
    out["contract"] = Json::object();
    out["enforce_contract"] = false;
  }
  if (a.Has("enforce") && a.Has("no-enforce"))
    return Status::InvalidArgument("give --enforce or --no-enforce, not both");
  if (a.Has("enforce")) {
    const Json& c = out.contains("contract") ? out["contract"] : Json();
    if (!c.is_object() || c.empty()) {
      return Status::InvalidArgument("--enforce needs a contract: add --contract FILE.json");
    }
    out["enforce_contract"] = true;
  }
  if (a.Has("no-enforce")) out["enforce_contract"] = false;
  if (!a.GetAll("tag").empty()) {
    Json tags = out.contains("tags") && out["tags"].is_object() ? out["tags"] : Json::object();
    for (const auto& t : a.GetAll("tag")) {
      ASSIGN_OR_RETURN(auto kv, ParseKeyValue("tag", t));
      const std::string tag = Lower(Trim(kv.second));
      if (tag == "none") {
        tags.erase(kv.first);
        continue;
      }
      RETURN_IF_ERROR(OneOf("tag", tag, {"public", "internal", "confidential", "personal", "none"}));
      tags[kv.first] = tag;
    }
    out["tags"] = tags;
  }
  if (auto r = a.GetOptional("retention-days")) {
    ASSIGN_OR_RETURN(int64_t days, ParseIntFlag("retention-days", *r, 0, 36500));
    out["retention_days"] = days;
  }
  if (auto d = a.GetOptional("description")) {
    if (d->size() > 10000) return Status::InvalidArgument("--description is longer than 10000 characters");
    out["description"] = *d;
  }
  return out;
}

}  // namespace lathe::cli
