// `lathe serve`: configuration (lathe.toml < LATHE_* environment < flags) and the server's lifecycle.
#pragma once

#include <string>
#include <vector>

namespace lathe {

int RunServe(const std::vector<std::string>& args);

}  // namespace lathe
