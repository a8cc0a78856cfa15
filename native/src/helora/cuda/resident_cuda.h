// Factories of the device-resident CUDA HE-LoRA step and of the plaintext LoRA step on the device
// (plain C++ header for the binding).
#pragma once
#include <memory>

#include "helora/resident.h"
#include "model/backend.h"

namespace tensafe::helora {

// Throws ArgumentRangeError when the model is not a CUDA model or the packing is not supported.
std::unique_ptr<ResidentStep> make_cuda_resident_step(model::ModelBackend& model, const ResidentSpec& spec);
// Plaintext LoRA on the model's stream (model/cuda lora_apply); ArgumentRangeError when the
// model is not a CUDA model.
std::unique_ptr<DeviceLoraStep> make_cuda_lora_step(model::ModelBackend& model, const ResidentSpec& spec);

}  // namespace tensafe::helora
