// The model binding's shared pieces, for other binding files:
//  * register_model_class() defines one JS class over a ModelBackend factory. model_binding.cc
//    registers `ModelCpu`; the CUDA backend registers `ModelCuda` the same way from its own
//    binding file, so both classes have the same methods:
//        TENSAFE_REGISTER_BINDING(model_cuda, [](Napi::Env env, Napi::Object exports) {
//          tensafe::napi::register_model_class(env, exports, "ModelCuda", tensafe::model::create_cuda_model);
//        });
//  * unwrap_model() gives a binding (the HE-LoRA pipeline) the engine object behind a JS model,
//    with the mutex that serialises calls on it: hold `mu` while using `backend`.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>

#include "model/backend.h"

namespace tensafe::napi {

struct ModelState {
  std::unique_ptr<model::ModelBackend> backend;
  std::mutex mu;
};

using ModelFactory =
    std::function<std::unique_ptr<model::ModelBackend>(const model::WeightSource&, const model::ModelOptions&)>;

void register_model_class(Napi::Env env, Napi::Object exports, const char* class_name, ModelFactory factory);

// The state behind a ModelCpu/ModelCuda object; TypeError naming `name` when v is not one,
// ERR_TENSAFE_DISPOSED after dispose().
std::shared_ptr<ModelState> unwrap_model(const Napi::Value& v, const std::string& name);

}  // namespace tensafe::napi
