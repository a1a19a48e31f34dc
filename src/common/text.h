// Checks for short user-chosen text that lathe shows back to people (API key names, labels in lists and
// logs).
#pragma once

#include <string_view>

namespace lathe {

// True if s is valid UTF-8 without characters that change how the text around it is displayed or read:
// C0 and C1 control characters and DEL, the bidirectional embedding, override, isolate and mark characters
// (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069: "Trojan Source" reordering), the line and
// paragraph separators (U+2028, U+2029) and the byte order mark (U+FEFF). Overlong forms, surrogates and code
// points above U+10FFFF are invalid UTF-8.
bool IsDisplaySafeText(std::string_view s);

}  // namespace lathe
