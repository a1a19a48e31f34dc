// Structured logging: one JSON object per line on stderr ({"ts","level","msg",...fields}). Thread-safe.
#pragma once

#include <string>

#include "common/json.h"

namespace lathe {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
LogLevel ParseLogLevel(const std::string& name);  // debug|info|warn|error; unknown -> info
void Log(LogLevel level, const std::string& msg, const Json& fields = Json::object());

inline void LogInfo(const std::string& msg, const Json& fields = Json::object()) { Log(LogLevel::kInfo, msg, fields); }
inline void LogWarn(const std::string& msg, const Json& fields = Json::object()) { Log(LogLevel::kWarn, msg, fields); }
inline void LogError(const std::string& msg, const Json& fields = Json::object()) { Log(LogLevel::kError, msg, fields); }
inline void LogDebug(const std::string& msg, const Json& fields = Json::object()) { Log(LogLevel::kDebug, msg, fields); }

}  // namespace lathe
