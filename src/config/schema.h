#pragma once
// The vocabulary config structs use to declare their keys once: each struct has a
//   template <class V> void visit(V& v)
// that names every field with its help text and rule, and every nested section. Visitors
// (binding from YAML, emitting YAML, listing keys for messages and docs) walk that one
// declaration, so defaults, validation, `config show` and the reference docs cannot drift apart.
#include <optional>
#include <string>
#include <vector>

namespace duet::config {

// A rule on a field's value: numeric bounds (per element for lists) and/or allowed strings.
struct Rule {
  std::optional<double> min;
  std::optional<double> max;
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::vector<std::string> choices;

  std::string describe() const;  // "> 0", "[0, 1)", "one of: a, b", or ""
};

inline Rule any() { return {}; }
inline Rule positive() {
  Rule r;
  r.min = 0.0;
  r.min_exclusive = true;
  return r;
}
inline Rule at_least(double lo) {
  Rule r;
  r.min = lo;
  return r;
}
inline Rule between(double lo, double hi) {
  Rule r;
  r.min = lo;
  r.max = hi;
  return r;
}
// [lo, hi)
inline Rule from_below(double lo, double hi) {
  Rule r = between(lo, hi);
  r.max_exclusive = true;
  return r;
}
inline Rule one_of(std::vector<std::string> values) {
  Rule r;
  r.choices = std::move(values);
  return r;
}

}  // namespace duet::config
