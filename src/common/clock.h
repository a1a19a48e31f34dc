// Time helpers. All stored timestamps are microseconds since the Unix epoch (UTC).
#pragma once

#include <cstdint>
#include <string>

namespace lathe {

int64_t NowMicros();           // wall clock
int64_t MonotonicMicros();     // for durations
std::string FormatRfc3339(int64_t micros);  // 2026-11-23T19:52:33.123Z

}  // namespace lathe
