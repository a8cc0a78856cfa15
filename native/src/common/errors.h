// Engine errors. The engine core throws these; the addon turns each kind into the matching
// JavaScript error class (TypeError, RangeError, Error with a code), so a caller always gets
// a JS exception naming the problem and never a crash.
#pragma once
#include <stdexcept>
#include <string>

namespace tensafe {

// Base of every engine error; `code` becomes the JS error's `code` property.
class EngineError : public std::runtime_error {
 public:
  EngineError(const std::string& code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// A value of the wrong type or shape (JS TypeError).
class ArgumentTypeError : public EngineError {
 public:
  explicit ArgumentTypeError(const std::string& message) : EngineError("ERR_TENSAFE_ARG_TYPE", message) {}
};

// A value outside its allowed range, or inconsistent with other arguments (JS RangeError).
class ArgumentRangeError : public EngineError {
 public:
  explicit ArgumentRangeError(const std::string& message) : EngineError("ERR_TENSAFE_ARG_RANGE", message) {}
};

// Use of a native object after dispose() (JS Error, code ERR_TENSAFE_DISPOSED).
class DisposedError : public EngineError {
 public:
  explicit DisposedError(const std::string& what)
      : EngineError("ERR_TENSAFE_DISPOSED", what + " has been disposed and can no longer be used") {}
};

// An object that cannot do what was asked while it is in use: a model that still has live
// contexts, a context still computing (JS Error, code ERR_TENSAFE_BUSY).
class BusyError : public EngineError {
 public:
  explicit BusyError(const std::string& message) : EngineError("ERR_TENSAFE_BUSY", message) {}
};

// Parameters refused by the security check (JS Error, code ERR_TENSAFE_INSECURE).
class InsecureParametersError : public EngineError {
 public:
  explicit InsecureParametersError(const std::string& message) : EngineError("ERR_TENSAFE_INSECURE", message) {}
};

// Bytes that do not parse: corrupt, truncated or from another context (code ERR_TENSAFE_FORMAT).
class FormatError : public EngineError {
 public:
  explicit FormatError(const std::string& message) : EngineError("ERR_TENSAFE_FORMAT", message) {}
};

// A backend that was not built or has no device (code ERR_TENSAFE_BACKEND).
class BackendUnavailableError : public EngineError {
 public:
  explicit BackendUnavailableError(const std::string& message) : EngineError("ERR_TENSAFE_BACKEND", message) {}
};

// A CUDA runtime or library failure (code ERR_TENSAFE_CUDA).
class CudaError : public EngineError {
 public:
  explicit CudaError(const std::string& message) : EngineError("ERR_TENSAFE_CUDA", message) {}
};

// Device or host allocation failure (code ERR_TENSAFE_OUT_OF_MEMORY).
class OutOfMemoryError : public EngineError {
 public:
  explicit OutOfMemoryError(const std::string& message) : EngineError("ERR_TENSAFE_OUT_OF_MEMORY", message) {}
};

}  // namespace tensafe
