#include "model/dtype.h"

#include "common/errors.h"

namespace tensafe::model {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
  }
  return "?";
}

DType parse_dtype(const std::string& s, const std::string& arg_name) {
  if (s == "f32" || s == "float32" || s == "fp32") return DType::F32;
  if (s == "f16" || s == "float16" || s == "fp16") return DType::F16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  throw ArgumentRangeError(arg_name + " must be one of 'f32', 'f16', 'bf16', got '" + s + "'");
}

}  // namespace tensafe::model
