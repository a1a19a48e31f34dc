#include "cli/client_args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>

namespace lathe::cli {

namespace {

const FlagSpec* FindLong(const std::vector<FlagSpec>& flags, std::string_view name) {
  for (const auto& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const FlagSpec* FindShort(const std::vector<FlagSpec>& flags, char c) {
  for (const auto& f : flags) {
    if (f.short_name != 0 && f.short_name == c) return &f;
  }
  return nullptr;
}

bool IsNumberLike(const std::string& s) {
  static const std::regex kNumber(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
  return std::regex_match(s, kNumber);
}

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

std::string ParsedArgs::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() || it->second.empty() ? fallback : it->second.back();
}

std::optional<std::string> ParsedArgs::GetOptional(const std::string& name) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

const std::vector<std::string>& ParsedArgs::GetAll(const std::string& name) const {
  static const std::vector<std::string> kEmpty;
  auto it = flags.find(name);
  return it == flags.end() ? kEmpty : it->second;
}

const std::vector<FlagSpec>& GlobalFlags() {
  static const std::vector<FlagSpec> kFlags = {
      {"url", "URL", "server URL (default: $LATHE_URL, the saved login, or http://127.0.0.1:8080)"},
      {"token", "TOKEN", "API token or key (default: $LATHE_TOKEN, or the saved login)"},
      {"project", "P", "project (default: default)"},
      {"json", "", "print the server's JSON response instead of a table"},
      {"help", "", "show help for the command", false, 'h'},
  };
  return kFlags;
}

Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args, const std::vector<FlagSpec>& flags) {
  ParsedArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positionals.insert(out.positionals.end(), args.begin() + static_cast<ptrdiff_t>(i) + 1, args.end());
      break;
    }
    const FlagSpec* spec = nullptr;
    std::string display;
    std::optional<std::string> inline_value;
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string body = a.substr(2);
      size_t eq = body.find('=');
      if (eq != std::string::npos) {
        inline_value = body.substr(eq + 1);
        body.resize(eq);
      }
      display = "--" + body;
      spec = FindLong(flags, body);
      if (!spec) return Status::InvalidArgument("unknown flag " + display);
    } else if (a.size() == 2 && a[0] == '-' && a[1] != '-') {
      spec = FindShort(flags, a[1]);
      display = a;
      if (!spec) {
        if (a[1] >= '0' && a[1] <= '9') {  // a negative number is a positional
          out.positionals.push_back(a);
          continue;
        }
        return Status::InvalidArgument("unknown flag " + display);
      }
    } else if (a.size() > 1 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9') && a[1] != '.') {
      return Status::InvalidArgument("unknown flag " + a);
    } else {
      out.positionals.push_back(a);
      continue;
    }
    std::vector<std::string>& values = out.flags[spec->name];
    if (spec->value_name.empty()) {
      if (inline_value) return Status::InvalidArgument(display + " takes no value");
      values = {"true"};
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size()) {
        return Status::InvalidArgument(display + " needs a value (" + display + " " + spec->value_name + ")");
      }
      value = args[++i];
    }
    if (spec->repeated) {
      values.push_back(std::move(value));
    } else {
      values = {std::move(value)};
    }
  }
  return out;
}

CommandLine SplitCommandWords(const std::vector<std::string>& args, const std::set<std::string>& groups) {
  CommandLine out;
  const auto& globals = GlobalFlags();
  bool taking = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!taking) {
      out.rest.push_back(a);
      continue;
    }
    if (a == "--") {
      taking = false;
      out.rest.push_back(a);
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      const FlagSpec* g = nullptr;
      if (a.size() > 2 && a[1] == '-') {
        std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
        g = FindLong(globals, name);
        out.rest.push_back(a);
        if (g && !g->value_name.empty() && a.find('=') == std::string::npos && i + 1 < args.size()) {
          out.rest.push_back(args[++i]);
        }
      } else {
        g = FindShort(globals, a[1]);
        out.rest.push_back(a);
      }
      if (!g) taking = false;  // a command flag: the command words are over
      continue;
    }
    bool want_second = out.words.size() == 1 && groups.count(out.words[0]) > 0;
    if (out.words.empty() || want_second) {
      out.words.push_back(a);
      if (out.words.size() == 2 || groups.count(a) == 0) taking = false;
    } else {
      out.rest.push_back(a);
    }
  }
  return out;
}

Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& text, int64_t min, int64_t max) {
  auto bad = [&] {
    return Status::InvalidArgument("--" + flag + " expects an integer from " + std::to_string(min) + " to " +
                                   std::to_string(max) + ", got '" + text + "'");
  };
  if (text.empty() || text.size() > 20) return bad();
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size() || text[0] == ' ' || text[0] == '+') return bad();
  if (v < min || v > max) return bad();
  return static_cast<int64_t>(v);
}

Result<double> ParseDoubleFlag(const std::string& flag, const std::string& text, double min, double max) {
  auto bad = [&] {
    return Status::InvalidArgument("--" + flag + " expects a number from " + std::to_string(min) + " to " +
                                   std::to_string(max) + ", got '" + text + "'");
  };
  if (!IsNumberLike(text)) return bad();
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v) || v < min || v > max) return bad();
  return v;
}

Json ParseParamValue(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  if (text.size() <= 64 && IsNumberLike(text)) {
    try {
      Json j = Json::parse(text);
      if (j.is_number_float() && !std::isfinite(j.get<double>())) return text;
      return j;
    } catch (const std::exception&) {
      return text;  // out of range: keep the text
    }
  }
  return text;
}

Result<std::pair<std::string, Json>> ParseParam(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return Status::InvalidArgument("--param expects key=value, got '" + text + "'");
  }
  std::string key = text.substr(0, eq);
  if (key.empty() || IsBlank(key)) return Status::InvalidArgument("--param '" + text + "' has an empty key");
  return std::make_pair(key, ParseParamValue(text.substr(eq + 1)));
}

Result<Json> ParseInstances(std::string_view text, size_t max_bytes) {
  if (text.size() > max_bytes) {
    return Status::InvalidArgument("input is " + std::to_string(text.size()) + " bytes, over the limit of " +
                                   std::to_string(max_bytes) + " bytes");
  }
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  if (IsBlank(text)) return Status::InvalidArgument("no instances: the input is empty");

  auto check_objects = [](const Json& arr) -> Status {
    if (arr.empty()) return Status::InvalidArgument("no instances: the array is empty");
    for (size_t i = 0; i < arr.size(); ++i) {
      if (!arr[i].is_object()) {
        return Status::InvalidArgument("instance " + std::to_string(i) + " is not a JSON object")
            .WithDetail(ErrorDetail::Field("instances[" + std::to_string(i) + "]", "must be an object"));
      }
    }
    return Status::Ok();
  };

  auto whole = ParseJson(text);
  if (whole.ok()) {
    Json& doc = *whole;
    if (doc.is_array()) {
      RETURN_IF_ERROR(check_objects(doc));
      return std::move(doc);
    }
    if (doc.is_object()) {
      if (doc.size() == 1 && doc.contains("instances") && doc["instances"].is_array()) {
        Json arr = std::move(doc["instances"]);
        RETURN_IF_ERROR(check_objects(arr));
        return arr;
      }
      return Json::array({std::move(doc)});
    }
    return Status::InvalidArgument(
        "expected a JSON object, an array of objects, or JSON Lines (one object per line)");
  }

  // Not one document: JSON Lines if the first non-blank line is a complete JSON value by itself.
  std::vector<std::pair<int64_t, std::string_view>> lines;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line_no;
    if (!IsBlank(line)) lines.emplace_back(line_no, line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  if (lines.size() < 2 || !ParseJson(lines.front().second).ok()) return whole.TakeStatus();
  Json out = Json::array();
  for (const auto& [n, line] : lines) {
    auto row = ParseJson(line);
    if (!row.ok()) {
      return Status::InvalidArgument("line " + std::to_string(n) + ": " + row.status().message())
          .WithDetail(ErrorDetail::Line(n, row.status().message()));
    }
    if (!row->is_object()) {
      return Status::InvalidArgument("line " + std::to_string(n) + " is not a JSON object")
          .WithDetail(ErrorDetail::Line(n, "must be a JSON object"));
    }
    out.push_back(std::move(*row));
  }
  return out;
}

}  // namespace lathe::cli
