// Resource identifiers: a short type prefix and 16 random hex characters ("job_3f9a0c21d4e5b687").
// Names chosen by users (datasets, models, deployments) are validated by IsValidName.
#pragma once

#include <string>
#include <string_view>

namespace lathe {

std::string NewId(std::string_view prefix);

// Names: 1-64 chars of [A-Za-z0-9._-], starting with a letter or digit. Safe in paths, URLs and HTML.
bool IsValidName(std::string_view name);
// The message to show when IsValidName fails.
const char* NameRules();

}  // namespace lathe
