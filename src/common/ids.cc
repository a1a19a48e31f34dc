#include "common/ids.h"

#include "common/crypto.h"

namespace lathe {

std::string NewId(std::string_view prefix) { return std::string(prefix) + "_" + RandomHex(8); }

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

const char* NameRules() {
  return "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";
}

}  // namespace lathe
