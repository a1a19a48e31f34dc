// Model bundle: the self-describing bytes a training run produces and a Predictor loads.
//
// Layout (all integers little-endian):
//   "LATHEMDL"            8-byte magic
//   u32 format_version    kModelBundleVersion; readers reject versions they do not know
//   u32 flags             0
//   u64 meta_len, meta    JSON: {"learner","task","pipeline":{...},"booster_format":"ubj","xgboost_version":[..]}
//   u64 booster_len, booster bytes (XGBoost UBJSON model)
//   64 bytes              lower-case hex SHA-256 of everything before it
// Deterministic: the same inputs give the same bytes (no timestamps inside).
// Errors: a short/garbled buffer is kInvalidArgument ("not a lathe model bundle"); a checksum mismatch or
// inconsistent lengths is kDataLoss. Never reads past the buffer. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace lathe::ml {

constexpr uint32_t kModelBundleVersion = 1;
constexpr size_t kMaxBundleMetaBytes = 256u << 20;

struct ModelBundle {
  Json meta;
  std::string booster;
};

std::string EncodeModelBundle(const Json& meta, std::string_view booster);
Result<ModelBundle> DecodeModelBundle(std::string_view bytes);

}  // namespace lathe::ml
