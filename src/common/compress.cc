#include "common/compress.h"

#include <zstd.h>

#include <memory>

namespace lathe {

std::string ZstdCompress(std::string_view data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

Result<std::string> ZstdDecompress(std::string_view data, size_t max_bytes) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out;
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  size_t last = 1;
  // Keep calling while there is input left or the output buffer came back full (more may be buffered).
  for (;;) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    last = ZSTD_decompressStream(dctx.get(), &ob, &in);
    if (ZSTD_isError(last)) return Status::DataLoss(std::string("zstd: ") + ZSTD_getErrorName(last));
    out.append(buf.data(), ob.pos);
    if (out.size() > max_bytes) return Status::DataLoss("zstd: decompressed size over limit");
    if (in.pos == in.size && ob.pos < ob.size) break;
  }
  if (last != 0) return Status::DataLoss("zstd: truncated frame");
  return out;
}

}  // namespace lathe
