#include "model/config.h"

#include <fstream>
#include <sstream>

#include "common/errors.h"
#include "model/json.h"

namespace tensafe::model {
namespace {

[[noreturn]] void bad(const std::string& source, const std::string& what) { throw FormatError(source + ": " + what); }

int read_int(const json::Value& root, const char* key, const std::string& source, bool required, int fallback) {
  const json::Value* v = root.find(key);
  if (!v || v->is_null()) {
    if (required) bad(source, std::string("missing required field \"") + key + "\"");
    return fallback;
  }
  if (!v->is_integer()) bad(source, std::string("field \"") + key + "\" must be an integer");
  int64_t x = v->as_int();
  if (x < -1 || x > 2147483647LL) bad(source, std::string("field \"") + key + "\" is out of range");
  return static_cast<int>(x);
}

double read_number(const json::Value& root, const char* key, const std::string& source, double fallback) {
  const json::Value* v = root.find(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_number()) bad(source, std::string("field \"") + key + "\" must be a number");
  return v->as_number();
}

bool read_bool(const json::Value& root, const char* key, const std::string& source, bool fallback) {
  const json::Value* v = root.find(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_bool()) bad(source, std::string("field \"") + key + "\" must be true or false");
  return v->as_bool();
}

std::string read_string(const json::Value& root, const char* key, const std::string& source,
                        const std::string& fallback) {
  const json::Value* v = root.find(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_string()) bad(source, std::string("field \"") + key + "\" must be a string");
  return v->as_string();
}

// A rope_scaling / rope_parameters block: only plain RoPE is implemented, so any scaling
// (linear, dynamic, yarn, longrope, ...) is refused rather than silently ignored.
void check_rope_block(const json::Value& block, const char* key, const std::string& source) {
  if (block.is_null()) return;
  if (!block.is_object()) bad(source, std::string("field \"") + key + "\" must be an object");
  std::string type = read_string(block, "rope_type", source, read_string(block, "type", source, "default"));
  if (type != "default")
    bad(source, std::string("\"") + key + "\" asks for RoPE type \"" + type +
                    "\"; only default RoPE (theta from the config) is supported");
}

}  // namespace

uint64_t Qwen2Config::parameter_count() const {
  const uint64_t d = static_cast<uint64_t>(hidden_size);
  const uint64_t per_layer = d * q_dim() + q_dim()                   // q
                             + 2 * (d * kv_dim() + kv_dim())         // k, v
                             + static_cast<uint64_t>(q_dim()) * d    // o
                             + 3 * d * intermediate_size             // gate, up, down
                             + 2 * d;                                // norms
  const uint64_t embed = static_cast<uint64_t>(vocab_size) * d;
  return embed + (tie_word_embeddings ? 0 : embed) + per_layer * num_hidden_layers + d;
}

void Qwen2Config::validate() const {
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) throw FormatError("model config \"" + name + "\": " + what);
  };
  check(model_type == "qwen2", "model_type is \"" + model_type + "\"; only Qwen2 (\"qwen2\") decoders are supported");
  check(hidden_size > 0 && hidden_size <= 65536, "hidden_size must be in [1, 65536], got " + std::to_string(hidden_size));
  check(num_hidden_layers > 0 && num_hidden_layers <= 1024,
        "num_hidden_layers must be in [1, 1024], got " + std::to_string(num_hidden_layers));
  check(num_attention_heads > 0 && num_attention_heads <= 1024,
        "num_attention_heads must be in [1, 1024], got " + std::to_string(num_attention_heads));
  check(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
        "num_key_value_heads (" + std::to_string(num_key_value_heads) + ") must divide num_attention_heads (" +
            std::to_string(num_attention_heads) + ")");
  check(head_dim > 0 && head_dim <= 1024 && head_dim % 2 == 0,
        "head_dim must be even and in [2, 1024], got " + std::to_string(head_dim));
  check(intermediate_size > 0 && intermediate_size <= (1 << 20),
        "intermediate_size must be in [1, 1048576], got " + std::to_string(intermediate_size));
  check(vocab_size > 0 && vocab_size <= (1 << 24), "vocab_size must be in [1, 16777216], got " + std::to_string(vocab_size));
  check(rms_norm_eps > 0 && rms_norm_eps < 1, "rms_norm_eps must be in (0, 1)");
  check(rope_theta > 1, "rope_theta must be > 1");
  check(attention_bias, "Qwen2 q/k/v projections carry a bias");
}

Qwen2Config Qwen2Config::from_json_text(const std::string& text, const std::string& source) {
  json::Value root = json::Value::parse(text, source);
  if (!root.is_object()) bad(source, "the config must be a JSON object");

  Qwen2Config c;
  c.name = source;
  c.model_type = read_string(root, "model_type", source, "");
  if (c.model_type.empty()) bad(source, "missing \"model_type\" (expected \"qwen2\")");
  if (c.model_type != "qwen2")
    bad(source, "model_type is \"" + c.model_type + "\"; only Qwen2 decoders (model_type \"qwen2\") are supported");
  if (const json::Value* arch = root.find("architectures"); arch && !arch->is_null()) {
    if (!arch->is_array() || arch->items().empty()) bad(source, "\"architectures\" must be a non-empty list");
    for (const auto& a : arch->items()) {
      if (!a.is_string()) bad(source, "\"architectures\" entries must be strings");
      if (a.as_string() != "Qwen2ForCausalLM" && a.as_string() != "Qwen2Model")
        bad(source, "architecture \"" + a.as_string() + "\" is not supported (Qwen2ForCausalLM only)");
    }
    c.architecture = arch->items()[0].as_string();
  }
  std::string act = read_string(root, "hidden_act", source, "silu");
  if (act != "silu") bad(source, "hidden_act \"" + act + "\" is not supported (Qwen2 uses \"silu\")");
  if (read_bool(root, "use_sliding_window", source, false))
    bad(source, "use_sliding_window is true; sliding-window attention is not supported");

  // transformers 5 lists each layer's attention kind; only full attention is implemented.
  if (const json::Value* lt = root.find("layer_types"); lt && !lt->is_null()) {
    if (!lt->is_array()) bad(source, "\"layer_types\" must be a list");
    for (const auto& t : lt->items())
      if (!t.is_string() || t.as_string() != "full_attention")
        bad(source, "layer_types holds \"" + (t.is_string() ? t.as_string() : std::string("?")) +
                        "\"; only full_attention layers are supported");
  }
  c.hidden_size = read_int(root, "hidden_size", source, true, 0);
  c.num_hidden_layers = read_int(root, "num_hidden_layers", source, true, 0);
  c.num_attention_heads = read_int(root, "num_attention_heads", source, true, 0);
  c.num_key_value_heads = read_int(root, "num_key_value_heads", source, false, c.num_attention_heads);
  c.intermediate_size = read_int(root, "intermediate_size", source, true, 0);
  c.vocab_size = read_int(root, "vocab_size", source, true, 0);
  c.max_position_embeddings = read_int(root, "max_position_embeddings", source, false, 32768);
  if (c.num_attention_heads <= 0) bad(source, "num_attention_heads must be positive");
  c.head_dim = read_int(root, "head_dim", source, false, c.hidden_size / c.num_attention_heads);
  if (!root.find("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    bad(source, "hidden_size is not a multiple of num_attention_heads and no head_dim is given");
  c.rms_norm_eps = read_number(root, "rms_norm_eps", source, 1e-6);

  // rope_theta: top level (Qwen2.5 as published) or rope_parameters.rope_theta (transformers 5).
  c.rope_theta = read_number(root, "rope_theta", source, 10000.0);
  if (const json::Value* rp = root.find("rope_parameters"); rp && !rp->is_null()) {
    check_rope_block(*rp, "rope_parameters", source);
    c.rope_theta = read_number(*rp, "rope_theta", source, c.rope_theta);
  }
  if (const json::Value* rs = root.find("rope_scaling"); rs) check_rope_block(*rs, "rope_scaling", source);

  c.tie_word_embeddings = read_bool(root, "tie_word_embeddings", source, false);
  c.torch_dtype = read_string(root, "torch_dtype", source, read_string(root, "dtype", source, "float32"));
  c.bos_token_id = read_int(root, "bos_token_id", source, false, -1);
  if (const json::Value* eos = root.find("eos_token_id"); eos && !eos->is_null()) {
    if (eos->is_integer()) {
      c.eos_token_ids.push_back(static_cast<int>(eos->as_int()));
    } else if (eos->is_array()) {
      for (const auto& e : eos->items()) {
        if (!e.is_integer()) bad(source, "\"eos_token_id\" entries must be integers");
        c.eos_token_ids.push_back(static_cast<int>(e.as_int()));
      }
    } else {
      bad(source, "\"eos_token_id\" must be an integer or a list of integers");
    }
  }
  c.validate();
  return c;
}

Qwen2Config Qwen2Config::from_directory(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ArgumentRangeError("model folder \"" + dir + "\" has no readable config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  Qwen2Config c = from_json_text(ss.str(), path);
  // Name the model after its folder.
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  size_t slash = base.find_last_of('/');
  c.name = slash == std::string::npos ? base : base.substr(slash + 1);
  return c;
}

std::vector<std::string> Qwen2Config::preset_names() { return {"qwen2.5-1.5b-shape", "qwen2.5-0.5b-shape", "tiny"}; }

bool Qwen2Config::is_preset(const std::string& n) {
  for (const auto& p : preset_names())
    if (p == n) return true;
  return false;
}

Qwen2Config Qwen2Config::preset(const std::string& n) {
  Qwen2Config c;
  c.torch_dtype = "bfloat16";
  c.eos_token_ids = {151643, 151645};
  c.bos_token_id = 151643;
  if (n == "qwen2.5-1.5b-shape") {
    c.hidden_size = 1536;
    c.num_hidden_layers = 28;
    c.num_attention_heads = 12;
    c.num_key_value_heads = 2;
    c.head_dim = 128;
    c.intermediate_size = 8960;
    c.vocab_size = 151936;
    c.max_position_embeddings = 131072;
    c.rope_theta = 1e6;
    c.tie_word_embeddings = true;
  } else if (n == "qwen2.5-0.5b-shape") {
    c.hidden_size = 896;
    c.num_hidden_layers = 24;
    c.num_attention_heads = 14;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.intermediate_size = 4864;
    c.vocab_size = 151936;
    c.max_position_embeddings = 32768;
    c.rope_theta = 1e6;
    c.tie_word_embeddings = true;
  } else if (n == "tiny") {
    // Small enough for unit tests, with GQA (2 query heads per KV head) and an untied head.
    c.hidden_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.intermediate_size = 128;
    c.vocab_size = 512;
    c.max_position_embeddings = 4096;
    c.rope_theta = 10000.0;
    c.tie_word_embeddings = false;
    c.eos_token_ids = {};
    c.bos_token_id = -1;
  } else {
    std::string list;
    for (const auto& p : preset_names()) list += (list.empty() ? "" : ", ") + p;
    throw ArgumentRangeError("unknown model preset \"" + n + "\" (presets: " + list + ")");
  }
  c.name = n + " (random weights)";
  c.validate();
  return c;
}

}  // namespace tensafe::model
