// Command-line parsing for the `lathe` client commands, and the small input parsers the commands share
// (--param values, prediction instances). Pure functions over strings: no I/O, thread-safe.
//
// Errors are kInvalidArgument Status values with a message meant for the user ("unknown flag --foo",
// "--limit expects an integer"), which the CLI prints as a usage error (exit 2).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe::cli {

// One flag a command accepts. Flags are written --name VALUE or --name=VALUE; boolean flags take no value.
struct FlagSpec {
  std::string name;          // without dashes: "name", "no-wait"
  std::string value_name;    // "" for a boolean flag, else shown in usage: "N", "FILE"
  std::string help;
  bool repeated = false;     // may be given more than once (--param a=1 --param b=2)
  char short_name = 0;       // optional one-letter alias: -n
};

// The parsed line: positionals in order and flag values by name (booleans map to {"true"}).
struct ParsedArgs {
  std::vector<std::string> positionals;
  std::map<std::string, std::vector<std::string>> flags;

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  // The last value given for `name`, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::optional<std::string> GetOptional(const std::string& name) const;
  const std::vector<std::string>& GetAll(const std::string& name) const;
};

// Parses `args` against `flags`. "--" ends flag parsing; a lone "-" is a positional (stdin). A flag given
// twice that is not `repeated` keeps the last value. Unknown flags and missing values are errors.
Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args, const std::vector<FlagSpec>& flags);

// The flags every command accepts anywhere on the line (--url, --token, --project, --json, --help/-h).
const std::vector<FlagSpec>& GlobalFlags();

// Splits the line into the command words and everything else (in order). The first word is the first
// non-flag token, skipping global flags and their values ("lathe --json datasets list"); when it names a
// group ("datasets", "runs", ...), the next non-flag token is taken as the second word. Words stop at the
// first non-global flag or "--".
struct CommandLine {
  std::vector<std::string> words;
  std::vector<std::string> rest;
};
CommandLine SplitCommandWords(const std::vector<std::string>& args, const std::set<std::string>& groups);

// Strict integer parsing for flag values: the whole text must be a base-10 integer in [min, max].
Result<int64_t> ParseIntFlag(const std::string& flag, const std::string& text, int64_t min, int64_t max);
// Strict finite floating-point parsing for flag values, in [min, max].
Result<double> ParseDoubleFlag(const std::string& flag, const std::string& text, double min, double max);

// A --param value: JSON true/false and JSON numbers become bool/number (integers stay integers), anything
// else (including "1e", "0x10", "NaN", "") is the string itself.
Json ParseParamValue(const std::string& text);
// "key=value" -> {key, ParseParamValue(value)}. The key must be non-empty; the value may be empty or
// contain further '='.
Result<std::pair<std::string, Json>> ParseParam(const std::string& text);

// Prediction input: one JSON object, a JSON array of objects, {"instances":[...]}, or JSON Lines (one
// object per non-blank line). Returns the array of instance objects. Errors name the line (JSON Lines) or
// the array index that is wrong; input above max_bytes or nested deeper than 64 levels is rejected.
Result<Json> ParseInstances(std::string_view text, size_t max_bytes = 256u << 20);

}  // namespace lathe::cli
