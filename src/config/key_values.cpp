#include "config/key_values.h"

#include <cstdint>

#include <fmt/format.h>

namespace duet::config {
namespace {

std::string show(const int64_t& v) { return std::to_string(v); }
std::string show(const double& v) { return fmt::format("{}", v); }
std::string show(const bool& v) { return v ? "true" : "false"; }
std::string show(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out.empty() || out != v ? "\"" + out + "\"" : out;
}
template <class T>
std::string show(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    s += (i ? ", " : "") + show(v[i]);
  }
  return s + "]";
}

class Flattener {
 public:
  explicit Flattener(std::vector<KeyValue>& out) : out_(out) {}

  template <class T, class... Rest>
  void field(const char* name, T& value, const char*, const Rest&...) {
    out_.emplace_back(prefix_ + name, show(value));
  }

  template <class S>
  void section(const char* name, S& section, const char*) {
    const std::string saved = prefix_;
    prefix_ += std::string(name) + ".";
    section.visit(*this);
    prefix_ = saved;
  }

 private:
  std::vector<KeyValue>& out_;
  std::string prefix_;
};

}  // namespace

std::vector<KeyValue> key_values(const Config& config) {
  Config copy = config;  // visitors take mutable references
  std::vector<KeyValue> out;
  Flattener flattener(out);
  copy.visit(flattener);
  return out;
}

}  // namespace duet::config
