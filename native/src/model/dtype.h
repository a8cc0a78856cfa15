// Weight element types and their conversions to float. The conversions are plain bit
// manipulation (no intrinsics) and marked host+device, so the CPU backend, the CUDA kernels
// and the synthetic-weight generator all round the same way.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__CUDACC__)
#define TENSAFE_HD __host__ __device__
#else
#define TENSAFE_HD
#endif

namespace tensafe::model {

enum class DType : uint8_t { F32 = 0, F16 = 1, BF16 = 2 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
// Our names ("f32", "f16", "bf16"), used by the JS API.
const char* dtype_name(DType t);
// Parses "f32"/"float32", "f16"/"float16"/"fp16", "bf16"/"bfloat16"; throws ArgumentRangeError.
DType parse_dtype(const std::string& s, const std::string& arg_name = "dtype");

TENSAFE_HD inline uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
TENSAFE_HD inline float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// bfloat16: the top 16 bits of a float32; round to nearest even, NaN kept quiet.
TENSAFE_HD inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
TENSAFE_HD inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

// IEEE half precision, including subnormals, infinities and NaN.
TENSAFE_HD inline float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return bits_float(sign);
    // subnormal: value = mant * 2^-24
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}
TENSAFE_HD inline uint16_t float_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);      // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);     // overflow -> inf (>= 65520)
  if (a < 0x38800000u) {                                                  // below 2^-14: subnormal or zero
    float v = bits_float(a) * 16777216.0f;                                // scale by 2^24, round to int
    uint32_t m = static_cast<uint32_t>(v);
    float rem = v - static_cast<float>(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t r = a + 0x0fffu + ((a >> 13) & 1u);  // round mantissa to 10 bits, nearest even
  return static_cast<uint16_t>(sign | ((r - 0x38000000u) >> 13));
}

// One element of a tensor of type t at byte address p, as float.
TENSAFE_HD inline float load_as_float(const void* p, DType t, size_t i) {
  if (t == DType::F32) return static_cast<const float*>(p)[i];
  uint16_t h = static_cast<const uint16_t*>(p)[i];
  return t == DType::BF16 ? bf16_to_float(h) : f16_to_float(h);
}

}  // namespace tensafe::model
