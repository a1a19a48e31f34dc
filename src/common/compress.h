// zstd compression of whole buffers and of streams.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace lathe {

std::string ZstdCompress(std::string_view data, int level = 3);
// Fails with kDataLoss on a corrupt frame; refuses to inflate past `max_bytes`.
Result<std::string> ZstdDecompress(std::string_view data, size_t max_bytes = size_t{1} << 34);

}  // namespace lathe
