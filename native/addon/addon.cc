// Module entry point: every binding file registers itself (TENSAFE_REGISTER_BINDING).
#include <napi.h>

#include "napi_util.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tensafe::napi::init_all_bindings(env, exports);
  return exports;
}

NODE_API_MODULE(tensafe, Init)
