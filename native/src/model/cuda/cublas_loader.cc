// cuBLAS through dlopen (see cublas_loader.h).
#include "model/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common/errors.h"

namespace tensafe::model::cuda {
namespace {

struct Loaded {
  CublasApi api;
  bool ok = false;
  std::string reason;
};

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

// Candidate files, most specific first.
std::vector<std::string> candidates() {
  std::vector<std::string> c;
  for (const char* so : {"libcublas.so.13", "libcublas.so.12"}) c.emplace_back(so);
  const char* roots[] = {"/usr/local/cuda/lib64/", "/usr/local/cuda/targets/x86_64-linux/lib/",
                         "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/",
                         "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cublas/lib/",
                         "/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/",
                         "/usr/local/lib/python3.12/dist-packages/nvidia/cublas/lib/"};
  for (const char* r : roots)
    for (const char* so : {"libcublas.so.13", "libcublas.so.12"}) c.push_back(std::string(r) + so);
  return c;
}

// dlopen of libcublas at `path`; its libcublasLt is preloaded from the same folder when the
// path names one (a wheel's folder is not on the loader's path).
void* open_at(const std::string& path, std::string* err) {
  const std::string dir = dir_of(path);
  if (!dir.empty()) {
    const std::string ver = path.substr(path.rfind(".so"));  // ".so.13"
    dlopen((dir + "libcublasLt" + ver).c_str(), RTLD_NOW | RTLD_GLOBAL);
  }
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (h == nullptr) {
    const char* e = dlerror();
    *err = e != nullptr ? e : "dlopen failed";
  }
  return h;
}

template <typename F>
bool bind(void* lib, const char* name, F* slot) {
  *slot = reinterpret_cast<F>(dlsym(lib, name));
  return *slot != nullptr;
}

Loaded load() {
  Loaded L;
  const char* env = std::getenv("TENSAFE_CUBLAS");
  std::vector<std::string> paths;
  if (env != nullptr && *env != '\0') {
    const std::string v(env);
    if (v == "off" || v == "0") {
      L.reason = "cuBLAS disabled by TENSAFE_CUBLAS=" + v;
      return L;
    }
    paths.push_back(v);
  } else {
    paths = candidates();
  }
  void* lib = nullptr;
  std::string last_err;
  for (const auto& p : paths) {
    lib = open_at(p, &last_err);
    if (lib != nullptr) {
      L.api.path = p;
      break;
    }
  }
  if (lib == nullptr) {
    L.reason = "cuBLAS not found (" + (env != nullptr && *env != '\0' ? std::string(env) : std::string("libcublas.so.13/.12")) +
               "): " + last_err;
    return L;
  }
  CublasApi& a = L.api;
  const bool ok = bind(lib, "cublasCreate_v2", &a.create) && bind(lib, "cublasDestroy_v2", &a.destroy) &&
                  bind(lib, "cublasSetStream_v2", &a.set_stream) && bind(lib, "cublasGetVersion_v2", &a.get_version) &&
                  bind(lib, "cublasGemmEx", &a.gemm_ex);
  bind(lib, "cublasGetStatusString", &a.status_string);  // optional
  bind(lib, "cublasSetWorkspace_v2", &a.set_workspace);  // optional
  if (!ok) {
    L.reason = "cuBLAS at " + a.path + " lacks an entry point (cublasCreate_v2/Destroy/SetStream/GetVersion/GemmEx)";
    return L;
  }
  L.ok = true;
  return L;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const CublasApi* cublas_api() { return loaded().ok ? &loaded().api : nullptr; }
std::string cublas_unavailable_reason() { return loaded().ok ? std::string() : loaded().reason; }

void cublas_check(cublasStatus_t status, const char* what) {
  if (status == 0) return;
  const CublasApi* a = cublas_api();
  std::string s = a != nullptr && a->status_string != nullptr ? a->status_string(status) : "";
  throw CudaError(std::string("cuBLAS ") + what + " failed: status " + std::to_string(status) + (s.empty() ? "" : " (" + s + ")"));
}

CublasHandle::~CublasHandle() {
  const CublasApi* a = cublas_api();
  if (handle_ != nullptr && a != nullptr) a->destroy(handle_);
}

cublasHandle_t CublasHandle::get(cudaStream_t stream) {
  const CublasApi* a = cublas_api();
  if (a == nullptr) throw CudaError("cuBLAS is not available: " + cublas_unavailable_reason());
  if (handle_ == nullptr) cublas_check(a->create(&handle_), "cublasCreate");
  if (!bound_ || stream != stream_) {
    cublas_check(a->set_stream(handle_, stream), "cublasSetStream");
    if (workspace_ != nullptr && a->set_workspace != nullptr)
      cublas_check(a->set_workspace(handle_, workspace_, workspace_bytes_), "cublasSetWorkspace");
    stream_ = stream;
    bound_ = true;
  }
  return handle_;
}

}  // namespace tensafe::model::cuda
