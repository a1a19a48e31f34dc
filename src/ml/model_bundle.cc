#include "ml/model_bundle.h"

#include <cstring>

#include "common/crypto.h"

namespace lathe::ml {
namespace {

constexpr char kMagic[8] = {'L', 'A', 'T', 'H', 'E', 'M', 'D', 'L'};
constexpr size_t kChecksumBytes = 64;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLE(std::string_view b, size_t pos, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[pos + static_cast<size_t>(i)])) << (8 * i);
  return v;
}

}  // namespace

std::string EncodeModelBundle(const Json& meta, std::string_view booster) {
  const std::string meta_text = DumpJson(meta);
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kModelBundleVersion);
  PutU32(&out, 0);
  PutU64(&out, meta_text.size());
  out += meta_text;
  PutU64(&out, booster.size());
  out.append(booster.data(), booster.size());
  out += Sha256Hex(out);
  return out;
}

Result<ModelBundle> DecodeModelBundle(std::string_view bytes) {
  constexpr size_t kHeader = sizeof(kMagic) + 4 + 4;
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::InvalidArgument("not a lathe model bundle (bad magic or too short)");
  }
  const auto version = static_cast<uint32_t>(GetLE(bytes, 8, 4));
  if (version != kModelBundleVersion) {
    return Status::InvalidArgument("model bundle format version " + std::to_string(version) +
                                   " is not supported by this build (reads " + std::to_string(kModelBundleVersion) + ")");
  }
  if (bytes.size() < kHeader + 8 + 8 + kChecksumBytes) return Status::DataLoss("model bundle is truncated");
  const std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
  const std::string_view checksum = bytes.substr(bytes.size() - kChecksumBytes);
  if (Sha256Hex(body) != checksum) return Status::DataLoss("model bundle checksum mismatch (corrupt or truncated)");
  size_t pos = kHeader;
  const uint64_t meta_len = GetLE(body, pos, 8);
  pos += 8;
  if (meta_len > kMaxBundleMetaBytes || meta_len > body.size() - pos || body.size() - pos - meta_len < 8) {
    return Status::DataLoss("model bundle section lengths are inconsistent");
  }
  const std::string_view meta_text = body.substr(pos, meta_len);
  pos += meta_len;
  const uint64_t booster_len = GetLE(body, pos, 8);
  pos += 8;
  if (booster_len != body.size() - pos) return Status::DataLoss("model bundle section lengths are inconsistent");
  auto meta = ParseJson(meta_text);
  if (!meta.ok()) return Status::DataLoss("model bundle metadata is not valid JSON: " + meta.status().message());
  if (!meta->is_object()) return Status::DataLoss("model bundle metadata is not a JSON object");
  ModelBundle b;
  b.meta = std::move(*meta);
  b.booster.assign(body.substr(pos));
  return b;
}

}  // namespace lathe::ml
