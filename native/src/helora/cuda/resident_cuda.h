// Factory of the device-resident CUDA HE-LoRA step (plain C++ header for the binding).
#pragma once
#include <memory>

#include "helora/resident.h"
#include "model/backend.h"

namespace tensafe::helora {

// Throws ArgumentRangeError when the model is not a CUDA model or the packing is not supported.
std::unique_ptr<ResidentStep> make_cuda_resident_step(model::ModelBackend& model, const ResidentSpec& spec);

}  // namespace tensafe::helora
