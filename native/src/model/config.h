// Qwen2 model configuration: the shape of a decoder, read from a Hugging Face config.json or
// taken from a named preset. Every backend sizes its buffers from this struct alone.
//
// Reading config.json: Qwen2.5 as published carries `rope_theta` at the top level, while
// transformers 5.x writes it under `rope_parameters.rope_theta`; both are read (the nested one
// wins when both exist, as transformers 5 does). Anything that is not a Qwen2 decoder
// (`model_type` other than "qwen2", an `architectures` entry other than Qwen2ForCausalLM /
// Qwen2Model, an activation other than SiLU, sliding-window attention switched on) is refused
// with a FormatError that names the field, never guessed at.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tensafe::model {

struct Qwen2Config {
  // Human-readable name for tables and result files. Presets with generated weights say so:
  // "qwen2.5-1.5b-shape (random weights)".
  std::string name = "qwen2";
  std::string model_type = "qwen2";
  std::string architecture = "Qwen2ForCausalLM";

  int hidden_size = 0;               // d
  int num_hidden_layers = 0;         // L
  int num_attention_heads = 0;       // query heads
  int num_key_value_heads = 0;       // KV heads (GQA: num_attention_heads % num_key_value_heads == 0)
  int head_dim = 0;                  // hidden_size / num_attention_heads unless config.json says otherwise
  int intermediate_size = 0;         // SwiGLU width
  int vocab_size = 0;                // rows of embed_tokens and lm_head
  int max_position_embeddings = 0;   // what the model was trained for (informational; contextLength is ours)
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;  // lm_head.weight absent, embed_tokens reused
  bool attention_bias = true;        // q/k/v carry a bias (Qwen2 always does; o/gate/up/down never)
  std::string torch_dtype = "float32";  // dtype the checkpoint declares ("bfloat16", "float16", "float32")
  int bos_token_id = -1;             // -1 when absent
  std::vector<int> eos_token_ids;    // config.json's eos_token_id (int or list); may be empty

  // Derived sizes.
  int q_dim() const { return num_attention_heads * head_dim; }
  int kv_dim() const { return num_key_value_heads * head_dim; }
  int group_size() const { return num_attention_heads / num_key_value_heads; }
  // Parameters of the decoder (embedding counted once when tied).
  uint64_t parameter_count() const;

  // Throws FormatError (naming the field) when the shape is inconsistent or out of range.
  void validate() const;

  // Parses config.json text. `source` names the file in error messages.
  static Qwen2Config from_json_text(const std::string& text, const std::string& source = "config.json");
  // Reads <dir>/config.json. No network access of any kind.
  static Qwen2Config from_directory(const std::string& dir);

  // Presets: "qwen2.5-1.5b-shape", "qwen2.5-0.5b-shape" (exact Qwen2.5 shapes, weights are
  // generated, so the name carries " (random weights)"), "tiny" (2 layers, d 64, vocab 512,
  // for tests). Unknown names: ArgumentRangeError listing the presets.
  static Qwen2Config preset(const std::string& preset_name);
  static std::vector<std::string> preset_names();
  static bool is_preset(const std::string& preset_name);
};

}  // namespace tensafe::model
