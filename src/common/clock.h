// Time helpers. All stored timestamps are microseconds since the Unix epoch (UTC).
#pragma once

#include <cstdint>
#include <string>

namespace lathe {

int64_t NowMicros();           // wall clock
int64_t MonotonicMicros();     // for durations
std::string FormatRfc3339(int64_t micros);  // 2026-11-23T19:52:33.123Z

// Proleptic Gregorian calendar <-> days since 1970-01-01 (H. Hinnant's algorithms; any int64 year).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d);

}  // namespace lathe
