#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/errors.h"
#include "model/json.h"

namespace tensafe::model {
namespace {

// The header of a real checkpoint is a few hundred kB at most; refuse absurd lengths before
// touching them (the format's reference implementation caps it at 100 MB as well).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

bool parse_dtype_name(const std::string& s, DType& out, size_t& elem) {
  if (s == "F32") { out = DType::F32; elem = 4; return true; }
  if (s == "F16") { out = DType::F16; elem = 2; return true; }
  if (s == "BF16") { out = DType::BF16; elem = 2; return true; }
  return false;
}

size_t other_dtype_size(const std::string& s) {
  if (s == "F64" || s == "I64" || s == "U64") return 8;
  if (s == "I32" || s == "U32") return 4;
  if (s == "I16" || s == "U16") return 2;
  if (s == "I8" || s == "U8" || s == "BOOL" || s == "F8_E4M3" || s == "F8_E5M2") return 1;
  return 0;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ArgumentRangeError("cannot open \"" + path + "\": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ArgumentRangeError("\"" + path + "\" is not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw FormatError(path + ": too short for a safetensors file (" + std::to_string(size) + " bytes)");
  }
  void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw OutOfMemoryError("cannot map \"" + path + "\": " + std::strerror(errno));
  f->map_ = m;
  f->map_size_ = size;

  const unsigned char* bytes = static_cast<const unsigned char*>(m);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes || n > size - 8)
    throw FormatError(path + ": header length " + std::to_string(n) + " does not fit the file (" + std::to_string(size) +
                      " bytes)");
  json::Value header = json::Value::parse(reinterpret_cast<const char*>(bytes + 8), n, path + " (header)");
  if (!header.is_object()) throw FormatError(path + ": the header is not a JSON object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = size - data_start;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& member : header.members()) {
    const std::string& name = member.first;
    const json::Value& v = member.second;
    if (name == "__metadata__") {
      if (!v.is_object()) throw FormatError(path + ": __metadata__ must be an object");
      for (const auto& kv : v.members())
        if (kv.second.is_string()) f->metadata_[kv.first] = kv.second.as_string();
      continue;
    }
    auto bad = [&](const std::string& what) { throw FormatError(path + ": tensor \"" + name + "\": " + what); };
    if (!v.is_object()) bad("entry is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offs = v.find("data_offsets");
    if (!dt || !dt->is_string()) bad("missing dtype");
    if (!shape || !shape->is_array()) bad("missing shape");
    if (!offs || !offs->is_array() || offs->items().size() != 2) bad("data_offsets must be [begin, end]");
    SafetensorsEntry e;
    e.name = name;
    e.dtype_name = dt->as_string();
    size_t elem = 0;
    e.supported = parse_dtype_name(e.dtype_name, e.dtype, elem);
    if (!e.supported) elem = other_dtype_size(e.dtype_name);
    if (elem == 0) bad("unknown dtype \"" + e.dtype_name + "\"");
    uint64_t numel = 1;
    for (const auto& s : shape->items()) {
      if (!s.is_integer() || s.as_int() < 0 || s.as_int() > (int64_t{1} << 40)) bad("shape entries must be non-negative integers");
      e.shape.push_back(s.as_int());
      if (s.as_int() != 0 && numel > (uint64_t{1} << 50) / static_cast<uint64_t>(s.as_int())) bad("shape is too large");
      numel *= static_cast<uint64_t>(s.as_int());
    }
    const json::Value& b = offs->items()[0];
    const json::Value& en = offs->items()[1];
    if (!b.is_integer() || !en.is_integer() || b.as_int() < 0 || en.as_int() < b.as_int()) bad("bad data_offsets");
    const uint64_t begin = static_cast<uint64_t>(b.as_int()), end = static_cast<uint64_t>(en.as_int());
    if (end > data_size) bad("data_offsets end " + std::to_string(end) + " lies past the data (" + std::to_string(data_size) + " bytes): truncated file?");
    if (end - begin != numel * elem)
      bad("holds " + std::to_string(end - begin) + " bytes, its shape and dtype need " + std::to_string(numel * elem));
    e.data = bytes + data_start + begin;
    e.nbytes = static_cast<size_t>(end - begin);
    if (e.nbytes) ranges.emplace_back(begin, end);
    f->index_[name] = f->entries_.size();
    f->entries_.push_back(std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw FormatError(path + ": two tensors overlap in the data section");
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, map_size_);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

}  // namespace tensafe::model
