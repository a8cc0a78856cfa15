// Reader of the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then the
// tensor bytes. The file is memory-mapped read-only and every entry is checked before any byte
// is used: supported dtype (F32, F16, BF16; other dtypes are listed but flagged), offsets inside
// the file, byte length = product(shape) * element size, no overlapping tensors.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace tensafe::model {

struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;      // as written in the file ("F32", "BF16", "I64", ...)
  bool supported = false;      // dtype is F32, F16 or BF16
  DType dtype = DType::F32;    // valid when supported
  std::vector<int64_t> shape;
  const void* data = nullptr;  // inside the mapping
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Maps and parses `path`; FormatError (naming the file and the entry) on any inconsistency,
  // ArgumentRangeError when the file cannot be opened.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace tensafe::model
