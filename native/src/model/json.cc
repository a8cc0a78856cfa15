#include "model/json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "common/errors.h"

namespace tensafe::model::json {

// Recursive descent over the bytes; depth is bounded so a hostile header cannot overflow the stack.
class Parser {
 public:
  Parser(const char* p, size_t n, const std::string& source) : p_(p), n_(n), source_(source) {}

  Value document() {
    Value v = value(0);
    skip_ws();
    if (i_ != n_) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(source_ + ": invalid JSON at byte " + std::to_string(i_) + ": " + what);
  }
  void skip_ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }
  char peek() {
    skip_ws();
    if (i_ >= n_) fail("unexpected end of input");
    return p_[i_];
  }
  void expect_literal(const char* lit) {
    for (const char* c = lit; *c; ++c, ++i_)
      if (i_ >= n_ || p_[i_] != *c) fail(std::string("expected '") + lit + "'");
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 64");
    char c = peek();
    Value v;
    switch (c) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"': v.kind_ = Value::Kind::String; v.str_ = string(); break;
      case 't': expect_literal("true"); v.kind_ = Value::Kind::Bool; v.b_ = true; break;
      case 'f': expect_literal("false"); v.kind_ = Value::Kind::Bool; v.b_ = false; break;
      case 'n': expect_literal("null"); break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) number(v);
        else fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  void object(Value& v, int depth) {
    v.kind_ = Value::Kind::Object;
    ++i_;  // {
    std::set<std::string> seen;
    if (peek() == '}') { ++i_; return; }
    for (;;) {
      if (peek() != '"') fail("expected a string key");
      std::string key = string();
      if (!seen.insert(key).second) fail("duplicate key \"" + key + "\"");
      if (peek() != ':') fail("expected ':'");
      ++i_;
      Value member = value(depth + 1);
      v.obj_.emplace_back(std::move(key), std::move(member));
      char c = peek();
      ++i_;
      if (c == '}') return;
      if (c != ',') fail("expected ',' or '}'");
    }
  }

  void array(Value& v, int depth) {
    v.kind_ = Value::Kind::Array;
    ++i_;  // [
    if (peek() == ']') { ++i_; return; }
    for (;;) {
      v.arr_.push_back(value(depth + 1));
      char c = peek();
      ++i_;
      if (c == ']') return;
      if (c != ',') fail("expected ',' or ']'");
    }
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  uint32_t hex4() {
    if (i_ + 4 > n_) fail("truncated \\u escape");
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      char h = p_[i_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= static_cast<uint32_t>(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return cp;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= n_) fail("unterminated string");
      char c = p_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (i_ >= n_) fail("unterminated escape");
      char e = p_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00) {  // surrogate pair
            if (i_ + 2 > n_ || p_[i_] != '\\' || p_[i_ + 1] != 'u') fail("lone high surrogate");
            i_ += 2;
            uint32_t lo = hex4();
            if (lo < 0xdc00 || lo >= 0xe000) fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            fail("lone low surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  void number(Value& v) {
    size_t start = i_;
    if (p_[i_] == '-') ++i_;
    if (i_ >= n_) fail("truncated number");
    if (p_[i_] == '0') {
      ++i_;
    } else if (p_[i_] >= '1' && p_[i_] <= '9') {
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    } else {
      fail("bad number");
    }
    bool integer = true;
    if (i_ < n_ && p_[i_] == '.') {
      integer = false;
      ++i_;
      if (i_ >= n_ || p_[i_] < '0' || p_[i_] > '9') fail("bad fraction");
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      integer = false;
      ++i_;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
      if (i_ >= n_ || p_[i_] < '0' || p_[i_] > '9') fail("bad exponent");
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    }
    std::string lit(p_ + start, i_ - start);
    v.kind_ = Value::Kind::Number;
    v.num_ = std::strtod(lit.c_str(), nullptr);
    if (integer) {
      errno = 0;
      long long x = std::strtoll(lit.c_str(), nullptr, 10);
      if (errno == 0) {
        v.integer_ = true;
        v.int_ = x;
      }
    }
  }

  const char* p_;
  size_t n_;
  size_t i_ = 0;
  const std::string& source_;
};

const Value* Value::find(const std::string& key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto& m : obj_)
    if (m.first == key) return &m.second;
  return nullptr;
}

Value Value::parse(const char* data, size_t size, const std::string& source) {
  Parser p(data, size, source);
  return p.document();
}

Value Value::parse(const std::string& text, const std::string& source) { return parse(text.data(), text.size(), source); }

}  // namespace tensafe::model::json
