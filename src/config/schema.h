#pragma once
// The vocabulary config structs use to declare their keys once: each struct has a
//   template <class V> void visit(V& v)
// that names every field with its help text and rule, and every nested section. Visitors
// (binding from YAML, emitting YAML, listing keys for messages and docs) walk that one
// declaration, so defaults, validation, `config show` and the reference docs cannot drift apart.
//
// Enumerated values are C++ enums. Each declares its spellings once, next to the enum, as
//   inline const Spellings<E>& spellings(E)   (found by argument-dependent lookup)
// and every visitor reads and writes those names: YAML, `config show`, `config reference` and
// error messages spell a value one way, and code compares enums, never strings.
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

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

// The spellings of an enum's values, in declaration order (the order docs list them in).
template <class E>
using Spellings = std::vector<std::pair<E, const char*>>;

template <class E, class = void>
struct HasSpellings : std::false_type {};
template <class E>
struct HasSpellings<E, std::void_t<decltype(spellings(std::declval<E>()))>> : std::is_enum<E> {};
template <class E>
constexpr bool is_config_enum_v = HasSpellings<E>::value;

// The YAML spelling of `value` ("clip" for LossType::kClip).
template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
const char* name(E value) {
  for (const auto& [candidate, spelling] : spellings(value)) {
    if (candidate == value) {
      return spelling;
    }
  }
  return "?";  // unreachable: every enumerator has a spelling (tests/config checks this)
}

// The value spelled `text`, or nullopt.
template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
std::optional<E> parse(const std::string& text) {
  for (const auto& [candidate, spelling] : spellings(E{})) {
    if (text == spelling) {
      return candidate;
    }
  }
  return std::nullopt;
}

// one_of(every spelling of E): the rule an enum field follows.
template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
Rule enum_rule() {
  Rule r;
  for (const auto& entry : spellings(E{})) {
    r.choices.emplace_back(entry.second);
  }
  return r;
}

}  // namespace duet::config

// fmt prints a config enum by its spelling: fmt::format("'{}'", config.loss.type) -> "'clip'".
template <class E>
struct fmt::formatter<E, char, std::enable_if_t<duet::config::is_config_enum_v<E>>>
    : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(E value, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(duet::config::name(value), ctx);
  }
};
