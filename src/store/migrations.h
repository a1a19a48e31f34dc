// Numbered schema migrations for the SQLite store. Migration i (1-based) moves the schema from i-1 to i.
// Append only: never edit a migration that has shipped.
#pragma once

#include <vector>

namespace lathe {

const std::vector<const char*>& SqliteMigrations();

}  // namespace lathe
