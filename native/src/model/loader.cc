// load_pretrained (Hugging Face folders) and make_synthetic_weights (generated presets).
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "common/thread_pool.h"
#include "model/json.h"
#include "model/safetensors.h"
#include "model/synthetic.h"
#include "model/weights.h"

namespace tensafe::model {
namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Owned weight storage: uninitialised (every byte is written right after, by both cores, so
// there is no single-threaded zeroing pass), 64-byte aligned for SIMD loads, and for large
// tensors 2 MB aligned with transparent huge pages requested: far fewer page faults while the
// weights are built (costly in VMs) and far fewer TLB misses while a decode streams them.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
std::shared_ptr<void> owned_bytes(size_t nbytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = nbytes >= kHuge ? kHuge : 64;
  const size_t size = (std::max<size_t>(nbytes, 1) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size);
  if (!p) throw OutOfMemoryError("cannot allocate " + std::to_string(size) + " bytes of weights");
#if defined(MADV_HUGEPAGE)
  if (align == kHuge) madvise(p, size, MADV_HUGEPAGE);
#endif
  return std::shared_ptr<void>(p, FreeDeleter());
}

// Converts n elements from `from` to `to` into new owned memory kept alive by `w`.
const void* convert(HostWeights& w, const void* src, DType from, size_t n, DType to) {
  auto buf = owned_bytes(n * dtype_size(to));
  void* dst = buf.get();
  parallel_for(
      n,
      [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
          float v = load_as_float(src, from, i);
          if (to == DType::F32) static_cast<float*>(dst)[i] = v;
          else if (to == DType::BF16) static_cast<uint16_t*>(dst)[i] = float_to_bf16(v);
          else static_cast<uint16_t*>(dst)[i] = float_to_f16(v);
        }
      },
      1 << 16);
  w.keep_alive(buf);
  return dst;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ArgumentRangeError("cannot read \"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Shard names come from a file: accept plain file names only, never a path that leaves the folder.
void check_shard_name(const std::string& name, const std::string& index_path) {
  if (name.empty() || name.find('/') != std::string::npos || name.find('\\') != std::string::npos || name == "." ||
      name == "..")
    throw FormatError(index_path + ": shard name \"" + name + "\" is not a plain file name");
}

bool ignorable_tensor(const std::string& name) {
  // Old checkpoints store RoPE's inverse frequencies as buffers; they are recomputed from theta.
  const std::string suffix = ".rotary_emb.inv_freq";
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::shared_ptr<HostWeights> load_pretrained(const std::string& dir, const DType* convert_to) {
  auto w = std::make_shared<HostWeights>();
  w->config = Qwen2Config::from_directory(dir);
  w->source = dir;
  const Qwen2Config& c = w->config;

  // Collect the files and which tensors each should hold.
  std::vector<std::shared_ptr<SafetensorsFile>> files;
  std::map<std::string, const SafetensorsEntry*> by_name;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (file_exists(index_path)) {
    json::Value index = json::Value::parse(read_text(index_path), index_path);
    const json::Value* map = index.find("weight_map");
    if (!map || !map->is_object()) throw FormatError(index_path + ": missing \"weight_map\" object");
    std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
    for (const auto& kv : map->members()) {
      if (!kv.second.is_string()) throw FormatError(index_path + ": weight_map values must be file names");
      const std::string& shard = kv.second.as_string();
      check_shard_name(shard, index_path);
      auto it = shards.find(shard);
      if (it == shards.end()) {
        const std::string p = dir + "/" + shard;
        if (!file_exists(p)) throw FormatError(index_path + " lists shard \"" + shard + "\", which is missing");
        it = shards.emplace(shard, SafetensorsFile::open(p)).first;
        files.push_back(it->second);
      }
      const SafetensorsEntry* e = it->second->find(kv.first);
      if (!e) throw FormatError(index_path + " places \"" + kv.first + "\" in " + shard + ", which does not hold it");
      by_name[kv.first] = e;
    }
  } else if (file_exists(dir + "/model.safetensors")) {
    files.push_back(SafetensorsFile::open(dir + "/model.safetensors"));
    for (const auto& e : files.back()->entries()) by_name[e.name] = &e;
  } else if (file_exists(dir + "/pytorch_model.bin")) {
    throw FormatError(dir + " holds pytorch_model.bin only; convert it to safetensors (pickle files are never loaded)");
  } else {
    throw ArgumentRangeError("model folder \"" + dir + "\" has neither model.safetensors nor model.safetensors.index.json");
  }
  for (auto& f : files) w->keep_alive(f);

  std::set<std::string> used;
  auto take = [&](const std::string& name, Tensor& t) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw FormatError(dir + ": missing tensor \"" + name + "\"");
    const SafetensorsEntry& e = *it->second;
    if (!e.supported)
      throw FormatError(dir + ": tensor \"" + name + "\" has dtype " + e.dtype_name + "; weights must be F32, F16 or BF16");
    t.name = name;
    t.shape = e.shape;
    t.dtype = e.dtype;
    t.data = e.data;
    used.insert(name);
    // Convert when asked, or when the mapping leaves the data misaligned for its element type.
    const bool misaligned = reinterpret_cast<uintptr_t>(e.data) % dtype_size(e.dtype) != 0;
    if ((convert_to && *convert_to != e.dtype) || misaligned) {
      DType to = convert_to ? *convert_to : e.dtype;
      t.data = convert(*w, e.data, e.dtype, t.numel(), to);
      t.dtype = to;
    }
  };

  take("model.embed_tokens.weight", w->embed_tokens);
  w->layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int i = 0; i < c.num_hidden_layers; ++i)
    for (int t = 0; t < kLayerTensorCount; ++t)
      take(layer_tensor_name(i, static_cast<LayerTensor>(t)), w->layers[static_cast<size_t>(i)].tensors[static_cast<size_t>(t)]);
  take("model.norm.weight", w->norm);
  if (c.tie_word_embeddings) {
    w->lm_head = w->embed_tokens;
    // A tied checkpoint may still carry a copy of lm_head.weight; transformers ignores it too.
    if (by_name.count("lm_head.weight")) used.insert("lm_head.weight");
  } else {
    take("lm_head.weight", w->lm_head);
  }
  for (const auto& kv : by_name) {
    if (used.count(kv.first) || ignorable_tensor(kv.first)) continue;
    throw FormatError(dir + ": unexpected tensor \"" + kv.first + "\" (layer index beyond num_hidden_layers, or not a Qwen2 checkpoint)");
  }
  w->validate();
  return w;
}

std::shared_ptr<HostWeights> convert_weights(const std::shared_ptr<const HostWeights>& src, DType dtype) {
  auto w = std::make_shared<HostWeights>(*src);  // views, config and (shared) storage
  w->keep_alive(src);
  auto conv = [&](Tensor& t) {
    if (t.dtype == dtype) return;
    t.data = convert(*w, t.data, t.dtype, t.numel(), dtype);
    t.dtype = dtype;
  };
  conv(w->embed_tokens);
  for (auto& l : w->layers)
    for (auto& t : l.tensors) conv(t);
  conv(w->norm);
  if (w->config.tie_word_embeddings) w->lm_head = w->embed_tokens;
  else conv(w->lm_head);
  w->validate();
  return w;
}

std::shared_ptr<HostWeights> make_synthetic_weights(const Qwen2Config& config, uint64_t seed, DType dtype) {
  config.validate();
  auto w = std::make_shared<HostWeights>();
  w->config = config;
  w->synthetic = true;
  w->seed = seed;
  w->source = "synthetic seed=" + std::to_string(seed);
  const Qwen2Config& c = config;

  auto fill = [&](Tensor& t, const std::string& name, std::vector<int64_t> shape, uint32_t id, synthetic::Scale s) {
    t.name = name;
    t.shape = std::move(shape);
    t.dtype = dtype;
    const size_t n = t.numel();
    auto buf = owned_bytes(n * dtype_size(dtype));
    void* dst = buf.get();
    const uint64_t base = synthetic::tensor_base(seed, id);
    parallel_for(
        n,
        [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) {
            uint16_t h = synthetic::value_bf16_at(base, i, s);
            if (dtype == DType::BF16) static_cast<uint16_t*>(dst)[i] = h;
            else if (dtype == DType::F32) static_cast<float*>(dst)[i] = bf16_to_float(h);
            else static_cast<uint16_t*>(dst)[i] = float_to_f16(bf16_to_float(h));
          }
        },
        1 << 16);
    t.data = dst;
    w->keep_alive(buf);
  };

  const int64_t d = c.hidden_size, v = c.vocab_size;
  fill(w->embed_tokens, "model.embed_tokens.weight", {v, d}, synthetic::embed_id(), synthetic::embedding_scale());
  w->layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int i = 0; i < c.num_hidden_layers; ++i)
    for (int t = 0; t < kLayerTensorCount; ++t) {
      LayerTensor lt = static_cast<LayerTensor>(t);
      fill(w->layers[static_cast<size_t>(i)][lt], layer_tensor_name(i, lt), layer_tensor_shape(c, lt),
           synthetic::layer_id(i, t), synthetic::layer_scale(t, c.hidden_size, c.q_dim(), c.intermediate_size));
    }
  fill(w->norm, "model.norm.weight", {d}, synthetic::final_norm_id(c.num_hidden_layers), synthetic::norm_scale());
  if (c.tie_word_embeddings) {
    w->lm_head = w->embed_tokens;
  } else {
    fill(w->lm_head, "lm_head.weight", {v, d}, synthetic::lm_head_id(c.num_hidden_layers), synthetic::embedding_scale());
  }
  w->validate();
  return w;
}

}  // namespace tensafe::model
