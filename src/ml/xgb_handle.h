// Internal to src/ml: RAII owners for XGBoost C API handles and error conversion. Not a public header.
#pragma once

#include <xgboost/c_api.h>

#include <string>

#include "common/status.h"

namespace lathe::ml::internal {

inline Status XgbError(const std::string& what) { return Status::Internal(what + ": " + XGBGetLastError()); }

#define LATHE_XGB(call, what)                                     \
  do {                                                            \
    if ((call) != 0) return ::lathe::ml::internal::XgbError(what); \
  } while (0)

class DMatrix {
 public:
  DMatrix() = default;
  ~DMatrix() {
    if (h_ != nullptr) XGDMatrixFree(h_);
  }
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  DMatrixHandle* out() { return &h_; }
  DMatrixHandle get() const { return h_; }

 private:
  DMatrixHandle h_ = nullptr;
};

class Booster {
 public:
  Booster() = default;
  ~Booster() {
    if (h_ != nullptr) XGBoosterFree(h_);
  }
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  BoosterHandle* out() { return &h_; }
  BoosterHandle get() const { return h_; }

 private:
  BoosterHandle h_ = nullptr;
};

}  // namespace lathe::ml::internal
