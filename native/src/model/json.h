// A small JSON reader for the three documents the model loader meets: config.json, the
// safetensors header and model.safetensors.index.json. It parses RFC 8259 JSON into a tree;
// numbers are kept as double plus the exact integer when the literal is an integer (tensor
// offsets exceed 2^53 in no real file, but exactness is checked anyway). Errors are
// FormatError with the byte offset and the source name. No dependency beyond the standard
// library, by design.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tensafe::model::json {

class Value {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_integer() const { return kind_ == Kind::Number && integer_; }

  bool as_bool() const { return b_; }
  double as_number() const { return num_; }
  int64_t as_int() const { return int_; }  // valid when is_integer()
  const std::string& as_string() const { return str_; }
  const std::vector<Value>& items() const { return arr_; }
  // Object members in document order (duplicate keys: FormatError at parse time).
  const std::vector<std::pair<std::string, Value>>& members() const { return obj_; }
  const Value* find(const std::string& key) const;  // nullptr when absent or not an object

  static Value parse(const std::string& text, const std::string& source);
  static Value parse(const char* data, size_t size, const std::string& source);

 private:
  friend class Parser;
  Kind kind_ = Kind::Null;
  bool b_ = false;
  bool integer_ = false;
  double num_ = 0.0;
  int64_t int_ = 0;
  std::string str_;
  std::vector<Value> arr_;
  std::vector<std::pair<std::string, Value>> obj_;
};

}  // namespace tensafe::model::json
