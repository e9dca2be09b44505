#include "config/loader.h"

#include "config/key_values.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/torch_compat.h"
#include "duet/build_info.h"

namespace fs = std::filesystem;

namespace duet::config {
namespace {

// ---- the flat view of all config sources -------------------------------------------------
// Every YAML source is flattened to "a.b.c" -> value (a scalar, a list, an empty mapping or
// null) with the place it came from; later sources replace earlier ones key by key, which is
// a deep merge of mappings where lists and scalars are replaced whole.

struct Entry {
  YAML::Node value;
  std::string where;  // "configs/run.yaml:12" or "--set optim.lr=0.1"
  bool used = false;
};

using FlatMap = std::map<std::string, Entry>;
using WhereFn = std::function<std::string(const YAML::Mark&)>;

[[noreturn]] void config_error(const std::string& message) {
  throw Error(ErrorKind::kConfig, message);
}

std::string join_path(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

bool valid_key_path(const std::string& path) {
  if (path.empty() || path.front() == '.' || path.back() == '.') {
    return false;
  }
  return path.find("..") == std::string::npos && path.find_first_of(" \t\n=") == std::string::npos;
}

void put(FlatMap& flat, const std::string& path, Entry entry) {
  // The new value replaces whatever was at or below `path`, and any scalar above it.
  for (auto it = flat.lower_bound(path); it != flat.end();) {
    if (it->first == path || it->first.rfind(path + ".", 0) == 0) {
      it = flat.erase(it);
    } else {
      break;
    }
  }
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
    flat.erase(path.substr(0, dot));
  }
  flat[path] = std::move(entry);
}

// YAML aliases make a document a graph: an alias inside its own anchor is a cycle, and aliases
// of aliases (a "billion laughs") multiply the keys exponentially. A config is a few levels
// deep and a few hundred keys, so walking a source stops well above that.
constexpr int kMaxDepth = 32;
constexpr int64_t kMaxNodes = 100000;

// The walk over one YAML source: where its nodes are, and how much of it was visited.
struct Walk {
  std::string origin;  // the file, or the --set argument
  WhereFn where;
  int64_t nodes = 0;
};

// Checks the keys of one mapping: plain names, and none twice (yaml-cpp accepts a repeated key
// and the later value would silently win).
void check_keys(const YAML::Node& map, const std::string& prefix, const Walk& walk) {
  std::map<std::string, YAML::Mark> seen;
  for (const auto& item : map) {
    const YAML::Node& key = item.first;
    if (!key.IsScalar() || !valid_key_path(key.Scalar())) {
      config_error(fmt::format("{}: invalid key under '{}': keys are plain names",
                               walk.where(key.Mark()), prefix.empty() ? "(top level)" : prefix));
    }
    const auto [first, inserted] = seen.emplace(key.Scalar(), key.Mark());
    if (!inserted) {
      config_error(fmt::format("{}: duplicate key '{}' (first set at {})", walk.where(key.Mark()),
                               join_path(prefix, key.Scalar()), walk.where(first->second)));
    }
  }
}

void flatten(const YAML::Node& map, const std::string& prefix, Walk& walk, FlatMap& flat,
             int depth = 0) {
  if (depth >= kMaxDepth) {
    config_error(
        fmt::format("{}: '{}' nests more than {} mappings deep (an alias that refers to itself?)",
                    walk.where(map.Mark()),
                    prefix.size() > 60 ? prefix.substr(0, 60) + "..." : prefix, kMaxDepth));
  }
  check_keys(map, prefix, walk);
  for (const auto& item : map) {
    if (++walk.nodes > kMaxNodes) {
      config_error(fmt::format(
          "{}: expands to more than {} keys (YAML aliases that multiply, a \"billion laughs\"?)",
          walk.origin, kMaxNodes));
    }
    const YAML::Node& key = item.first;
    const YAML::Node& value = item.second;
    const std::string path = join_path(prefix, key.Scalar());
    if (value.IsMap() && value.size() > 0) {
      flatten(value, path, walk, flat, depth + 1);
    } else {
      put(flat, path, Entry{value, walk.where(key.Mark())});
    }
  }
}

// ---- files and includes --------------------------------------------------------------------

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    config_error(
        fmt::format("cannot read config file '{}': {}", path.string(), std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    config_error(fmt::format("{}:{}:{}: YAML syntax error: {}", origin, e.mark.line + 1,
                             e.mark.column + 1, e.msg));
  }
}

fs::path resolve_include(const std::string& name, const fs::path& base_dir,
                         const std::string& where) {
  std::vector<fs::path> tried;
  fs::path requested(name);
  if (requested.is_absolute()) {
    tried.push_back(requested);
  } else {
    tried.push_back(base_dir / requested);
    for (const auto& dir : include_search_path()) {
      tried.push_back(fs::path(dir) / requested);
    }
  }
  for (const auto& candidate : tried) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) {
      return candidate;
    }
  }
  std::string looked;
  for (const auto& candidate : tried) {
    looked += (looked.empty() ? "" : ", ") + candidate.lexically_normal().string();
  }
  config_error(fmt::format("{}: include '{}' not found (looked in: {})", where, name, looked));
}

void load_source(const std::string& text, const std::string& origin, const fs::path& base_dir,
                 std::vector<std::string>& stack, FlatMap& flat);

// `included_at`: "file:line" of the include that names `path`, empty for the top-level file.
void load_file(const fs::path& path, const std::string& included_at,
               std::vector<std::string>& stack, FlatMap& flat) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  const std::string key = ec ? path.string() : canonical.string();
  if (std::find(stack.begin(), stack.end(), key) != stack.end()) {
    std::string chain;
    for (const auto& f : stack) {
      chain += f + " -> ";
    }
    config_error(fmt::format("{}: include cycle: {}{}", included_at, chain, key));
  }
  std::error_code exists_ec;
  if (!fs::is_regular_file(path, exists_ec)) {
    config_error(
        fmt::format("config file '{}' does not exist or is not a regular file", path.string()));
  }
  stack.push_back(key);
  load_source(read_text(path), path.string(), path.parent_path(), stack, flat);
  stack.pop_back();
}

void load_source(const std::string& text, const std::string& origin, const fs::path& base_dir,
                 std::vector<std::string>& stack, FlatMap& flat) {
  YAML::Node root = parse_yaml(text, origin);
  const WhereFn where = [&origin](const YAML::Mark& mark) {
    return mark.is_null() ? origin : fmt::format("{}:{}", origin, mark.line + 1);
  };
  if (root.IsNull()) {
    return;  // an empty file sets nothing
  }
  if (!root.IsMap()) {
    config_error(fmt::format("{}: the top level of a config must be a mapping of sections",
                             where(root.Mark())));
  }
  Walk walk{origin, where};
  check_keys(root, "", walk);  // before root["include"], which would take the first of two
  if (const YAML::Node includes = root["include"]) {
    const std::string include_where = where(includes.Mark());
    std::vector<YAML::Node> names;
    if (includes.IsScalar()) {
      names.push_back(includes);
    } else if (includes.IsSequence()) {
      for (const auto& n : includes) {
        names.push_back(n);
      }
    }
    if (names.empty() && !includes.IsNull()) {
      config_error(
          fmt::format("{}: include: expected a file name or a list of file names", include_where));
    }
    for (const auto& n : names) {
      if (!n.IsScalar() || n.Scalar().empty()) {
        config_error(fmt::format("{}: include: expected a file name", where(n.Mark())));
      }
      load_file(resolve_include(n.Scalar(), base_dir, where(n.Mark())), where(n.Mark()), stack,
                flat);
    }
  }
  for (const auto& item : root) {
    if (item.first.Scalar() == "include") {
      continue;
    }
    YAML::Node single(YAML::NodeType::Map);
    single[item.first] = item.second;
    flatten(single, "", walk, flat);
  }
}

// One punctuation character other than YAML's null (~): YAML reads most of them as syntax (',' is
// null, '|' a block, '[' an error), but on the command line they are meant as themselves.
bool literal_character(const std::string& value_text) {
  return value_text.size() == 1 && std::ispunct(static_cast<unsigned char>(value_text[0])) &&
         value_text != "~";
}

void apply_override(const std::string& text, FlatMap& flat) {
  const size_t eq = text.find('=');
  const std::string where = "--set " + text;
  if (eq == std::string::npos) {
    config_error(fmt::format("{}: expected KEY=VALUE (for example optim.lr=0.001)", where));
  }
  const std::string key = text.substr(0, eq);
  if (!valid_key_path(key)) {
    config_error(fmt::format("{}: '{}' is not a key path (for example optim.lr)", where, key));
  }
  if (key == "include" || key.rfind("include.", 0) == 0) {
    config_error(fmt::format("{}: includes belong in config files, not --set", where));
  }
  const std::string value_text = text.substr(eq + 1);
  YAML::Node value;
  if (literal_character(value_text)) {
    value = YAML::Node(value_text);  // `--set data.csv_separator=,` means the character
  } else {
    try {
      value = YAML::Load(value_text);
    } catch (const YAML::ParserException& e) {
      config_error(fmt::format(
          "{}: the value '{}' is not valid YAML ({} at column {} of the value); quote it if it is "
          "a string, e.g. --set '{}=\"...\"'",
          where, value_text, e.msg, e.mark.column + 1, key));
    }
  }
  if (value.IsMap() && value.size() > 0) {
    Walk walk{where, [&where](const YAML::Mark&) { return where; }};
    flatten(value, key, walk, flat);
  } else {
    put(flat, key, Entry{value, where});
  }
}

// ---- scalar conversion ---------------------------------------------------------------------

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing (null)";
  }
}

std::string format_number(double value) { return fmt::format("{}", value); }

// "an integer", "a number", "a list of strings".
std::string with_article(const std::string& noun) {
  const bool vowel = !noun.empty() && std::string("aeiou").find(noun[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + noun;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest candidate, if it is close enough to be a plausible typo.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : std::string();
}

std::string check_rule(double value, const Rule& rule) {
  const bool below = rule.min && (value < *rule.min || (rule.min_exclusive && value == *rule.min));
  const bool above = rule.max && (value > *rule.max || (rule.max_exclusive && value == *rule.max));
  if (below || above) {
    return fmt::format("must be {}, got {}", rule.describe(), format_number(value));
  }
  return {};
}

std::string check_rule(const std::string& value, const Rule& rule) {
  if (rule.choices.empty() ||
      std::find(rule.choices.begin(), rule.choices.end(), value) != rule.choices.end()) {
    return {};
  }
  std::string message = fmt::format("must be {}, got '{}'", rule.describe(), value);
  const std::string guess = nearest(value, rule.choices);
  if (!guess.empty()) {
    message += fmt::format(" (did you mean '{}'?)", guess);
  }
  return message;
}

std::string convert(const YAML::Node& node, int64_t& out, const Rule& rule) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) {
      out = value;
      return check_rule(static_cast<double>(value), rule);
    }
  }
  return "expected an integer, got " + describe(node);
}

std::string convert(const YAML::Node& node, double& out, const Rule& rule) {
  if (node.IsScalar() && !node.Scalar().empty()) {
    const std::string& s = node.Scalar();
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size() && errno == 0 && std::isfinite(value)) {
      out = value;
      return check_rule(value, rule);
    }
  }
  return "expected a finite number, got " + describe(node);
}

std::string convert(const YAML::Node& node, bool& out, const Rule&) {
  if (node.IsScalar()) {
    std::string s = node.Scalar();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "true" || s == "yes" || s == "on") {
      out = true;
      return {};
    }
    if (s == "false" || s == "no" || s == "off") {
      out = false;
      return {};
    }
  }
  return "expected true or false, got " + describe(node);
}

std::string convert(const YAML::Node& node, std::string& out, const Rule& rule) {
  if (node.IsNull()) {
    out.clear();
    return check_rule(out, rule);
  }
  if (node.IsScalar()) {
    out = node.Scalar();
    return check_rule(out, rule);
  }
  return "expected a string, got " + describe(node);
}

template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
std::string convert(const YAML::Node& node, E& out, const Rule&) {
  const Rule rule = enum_rule<E>();
  if (!node.IsScalar()) {
    return fmt::format("must be {}, got {}", rule.describe(), describe(node));
  }
  if (const auto value = parse<E>(node.Scalar())) {
    out = *value;
    return {};
  }
  return check_rule(node.Scalar(), rule);
}

template <class T>
std::string convert(const YAML::Node& node, std::vector<T>& out, const Rule& rule) {
  if (node.IsNull()) {
    out.clear();
    return {};
  }
  if (!node.IsSequence()) {
    return "expected a list, got " + describe(node);
  }
  std::vector<T> values(node.size());
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string problem = convert(node[i], values[i], rule);
    if (!problem.empty()) {
      return fmt::format("element {}: {}", i, problem);
    }
  }
  out = std::move(values);
  return {};
}

// ---- visitors over the declared schema ------------------------------------------------------

struct KeyInfo {
  std::string path;
  std::string type;
  std::string default_value;
  std::string rule;
  std::string help;
  bool is_section = false;
};

std::string type_name(const int64_t&) { return "integer"; }
std::string type_name(const double&) { return "number"; }
std::string type_name(const bool&) { return "bool"; }
std::string type_name(const std::string&) { return "string"; }
template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
std::string type_name(const E&) {
  return "string";
}
template <class T>
std::string type_name(const std::vector<T>&) {
  return "list of " + type_name(T{}) + "s";
}

std::string show(const int64_t& v) { return std::to_string(v); }
std::string show(const double& v) { return format_number(v); }
std::string show(const bool& v) { return v ? "true" : "false"; }
std::string show(const std::string& v) {
  if (v == "\t") {
    return "\"\\t\"";
  }
  return v.empty() ? "\"\"" : v;
}
template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
std::string show(const E& v) {
  return name(v);
}
template <class T>
std::string show(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    s += (i ? ", " : "") + show(v[i]);
  }
  return s + "]";
}

class Lister {
 public:
  explicit Lister(std::vector<KeyInfo>& keys) : keys_(keys) {}

  template <class T>
  void field(const char* name, T& value, const char* help, const Rule& rule = {}) {
    std::string allowed = rule.describe();
    if constexpr (is_config_enum_v<T>) {
      allowed = enum_rule<T>().describe();
    }
    keys_.push_back(
        {join_path(prefix_, name), type_name(value), show(value), allowed, help, false});
  }

  template <class S>
  void section(const char* name, S& section, const char* help) {
    keys_.push_back({join_path(prefix_, name), "section", "", "", help, true});
    const std::string saved = prefix_;
    prefix_ = join_path(prefix_, name);
    section.visit(*this);
    prefix_ = saved;
  }

 private:
  std::vector<KeyInfo>& keys_;
  std::string prefix_;
};

const std::vector<KeyInfo>& all_keys() {
  static const std::vector<KeyInfo> keys = [] {
    std::vector<KeyInfo> k;
    Config defaults;
    Lister lister(k);
    defaults.visit(lister);
    return k;
  }();
  return keys;
}

}  // namespace

std::vector<KeyValue> key_values(const Config& config) {
  Config copy = config;  // visitors take mutable references
  std::vector<KeyInfo> keys;
  Lister lister(keys);
  copy.visit(lister);
  std::vector<KeyValue> out;
  for (auto& key : keys) {
    if (!key.is_section) {
      out.emplace_back(std::move(key.path), std::move(key.default_value));
    }
  }
  return out;
}

namespace {

class Binder {
 public:
  Binder(FlatMap& flat, std::vector<std::string>& problems) : flat_(flat), problems_(problems) {}

  template <class T>
  void field(const char* name, T& value, const char*, const Rule& rule = {}) {
    const std::string path = join_path(prefix_, name);
    auto it = flat_.find(path);
    if (it == flat_.end()) {
      return;
    }
    it->second.used = true;
    const std::string problem = convert(it->second.value, value, rule);
    if (!problem.empty()) {
      problems_.push_back(fmt::format("{}: {}: {}", it->second.where, path, problem));
    }
  }

  template <class S>
  void section(const char* name, S& section, const char*) {
    const std::string path = join_path(prefix_, name);
    auto it = flat_.find(path);
    if (it != flat_.end()) {
      it->second.used = true;
      const YAML::Node& value = it->second.value;
      if (!value.IsNull() && !value.IsMap()) {
        problems_.push_back(fmt::format("{}: {}: expected a mapping (section '{}'), got {}",
                                        it->second.where, path, path, describe(value)));
      }
    }
    const std::string saved = prefix_;
    prefix_ = path;
    section.visit(*this);
    prefix_ = saved;
  }

 private:
  FlatMap& flat_;
  std::vector<std::string>& problems_;
  std::string prefix_;
};

class Emitter {
 public:
  explicit Emitter(YAML::Emitter& out) : out_(out) {}

  void field(const char* name, int64_t& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << name << YAML::Value << value;
  }
  void field(const char* name, double& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << name << YAML::Value << format_number(value);
  }
  void field(const char* name, bool& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << name << YAML::Value << YAML::TrueFalseBool << value;
  }
  void field(const char* name, std::string& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << name << YAML::Value;
    if (value.empty() || value.find_first_of("\t\n\r") != std::string::npos) {
      out_ << YAML::DoubleQuoted;
    }
    out_ << value;
  }
  void field(const char* name, std::vector<double>& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (double v : value) {
      out_ << format_number(v);
    }
    out_ << YAML::EndSeq;
  }
  template <class E, std::enable_if_t<is_config_enum_v<E>, int> = 0>
  void field(const char* key, E& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << key << YAML::Value << name(value);
  }
  void field(const char* name, std::vector<std::string>& value, const char*, const Rule& = {}) {
    out_ << YAML::Key << name << YAML::Value;
    if (value.empty()) {
      out_ << YAML::Flow;
    }
    out_ << YAML::BeginSeq;
    for (const auto& v : value) {
      out_ << v;
    }
    out_ << YAML::EndSeq;
  }

  template <class S>
  void section(const char* name, S& section, const char*) {
    out_ << YAML::Key << name << YAML::Value << YAML::BeginMap;
    section.visit(*this);
    out_ << YAML::EndMap;
  }

 private:
  YAML::Emitter& out_;
};

// ---- cross-field rules ---------------------------------------------------------------------

struct Inconsistency {
  std::string key;  // the key whose location the message is reported at
  std::string message;
};

// Adds one broken rule: the key its message is reported at, and the message.
using AddInconsistency = std::function<void(std::string key, std::string message)>;

// The towers' shapes and pooling, and the temperature's range.
void model_rules(const Config& c, const AddInconsistency& add) {
  const auto& vision = c.model.vision;
  const auto& text = c.model.text;
  if (vision.width % vision.heads != 0) {
    add("model.vision.heads",
        fmt::format("model.vision.width ({}) must be divisible by model.vision.heads ({})",
                    vision.width, vision.heads));
  }
  if (text.width % text.heads != 0) {
    add("model.text.heads",
        fmt::format("model.text.width ({}) must be divisible by model.text.heads ({})", text.width,
                    text.heads));
  }
  if (vision.image_size % vision.patch_size != 0) {
    add("model.vision.patch_size",
        fmt::format(
            "model.vision.image_size ({}) must be divisible by model.vision.patch_size ({})",
            vision.image_size, vision.patch_size));
  }
  if (vision.pool == VisionPool::kClass && !vision.class_token) {
    add("model.vision.pool",
        "model.vision.pool 'class' needs model.vision.class_token: true; use mean or attention "
        "pooling without a class token");
  }
  if (!vision.proj && vision.width != c.model.embed_dim) {
    add("model.vision.proj",
        fmt::format("model.vision.proj: false needs model.vision.width ({}) to equal "
                    "model.embed_dim ({}): the pooled token is the embedding",
                    vision.width, c.model.embed_dim));
  }
  if (c.model.init_logit_scale < 0.0 || c.model.init_logit_scale > c.optim.logit_scale_max) {
    add("model.init_logit_scale",
        fmt::format("model.init_logit_scale ({}) must lie in [0, optim.logit_scale_max ({})]",
                    format_number(c.model.init_logit_scale),
                    format_number(c.optim.logit_scale_max)));
  }
}

// The loss against the model, and the step count, batch and schedule.
void training_rules(const Config& c, const AddInconsistency& add) {
  if (c.loss.type == LossType::kSiglip && !c.model.logit_bias) {
    add("loss.type",
        "loss.type 'siglip' needs model.logit_bias: true (the sigmoid loss learns a bias)");
  }
  if (c.loss.type == LossType::kClip && c.model.logit_bias) {
    add("model.logit_bias",
        "model.logit_bias: true has no effect with loss.type 'clip' (softmax ignores a shared "
        "bias); use loss.type 'siglip' or turn it off");
  }
  const auto& train = c.train;
  if ((train.steps > 0) == (train.epochs > 0)) {
    add("train.steps",
        fmt::format("set exactly one of train.steps ({}) and train.epochs ({}) above 0",
                    train.steps, train.epochs));
  }
  if (train.batch_size % train.accum_steps != 0) {
    add("train.accum_steps",
        fmt::format("train.batch_size ({}) must be divisible by train.accum_steps ({})",
                    train.batch_size, train.accum_steps));
  }
  if (train.steps > 0 && c.schedule.warmup_steps >= train.steps) {
    add("schedule.warmup_steps",
        fmt::format("schedule.warmup_steps ({}) must be less than train.steps ({})",
                    c.schedule.warmup_steps, train.steps));
  }
  if (c.schedule.min_lr > c.optim.lr) {
    add("schedule.min_lr",
        fmt::format("schedule.min_lr ({}) must not exceed optim.lr ({})",
                    format_number(c.schedule.min_lr), format_number(c.optim.lr)));
  }
}

// Augmentation and normalisation values, the CSV separator.
void data_rules(const Config& c, const AddInconsistency& add) {
  const auto& data = c.data;
  if (data.rrc_scale.size() != 2 || data.rrc_scale[0] <= 0.0 ||
      data.rrc_scale[0] > data.rrc_scale[1]) {
    add("data.rrc_scale",
        fmt::format("data.rrc_scale ({}) must be two numbers [min, max] with 0 < min <= max <= 1",
                    show(data.rrc_scale)));
  }
  if (data.mean.size() != 3) {
    add("data.mean", fmt::format("data.mean ({}) must have 3 values (R, G, B)", show(data.mean)));
  }
  if (data.stddev.size() != 3 ||
      std::any_of(data.stddev.begin(), data.stddev.end(), [](double s) { return s <= 0.0; })) {
    add("data.std",
        fmt::format("data.std ({}) must have 3 positive values (R, G, B)", show(data.stddev)));
  }
  if (data.csv_separator.size() != 1) {
    add("data.csv_separator",
        fmt::format("data.csv_separator ('{}') must be a single character", data.csv_separator));
  }
}

// Evaluation sets, and what the device, backend and loss need of this build.
void run_rules(const Config& c, const AddInconsistency& add) {
  const auto& zs = c.eval.zero_shot;
  const int zs_set = !zs.source.empty() + !zs.classnames.empty() + !zs.templates.empty();
  if (zs_set != 0 && zs_set != 3) {
    add("eval.zero_shot",
        "eval.zero_shot needs all of source, classnames and templates, or none of them");
  }
  if (c.distributed.backend == Backend::kNccl && c.train.device == DeviceChoice::kCpu) {
    add("distributed.backend", "distributed.backend 'nccl' needs train.device 'cuda' or 'auto'");
  }
  if (c.distributed.backend == Backend::kNccl && !DUET_NCCL) {
    add("distributed.backend",
        "distributed.backend 'nccl': this duet was built without NCCL (`duet --version` says; "
        "configure with NCCL found, see docs/gpu.md), or use 'gloo' or 'auto'");
  }
  if (c.train.precision == Precision::kBf16 && !autocast_supported()) {
    add("train.precision",
        "train.precision 'bf16' needs LibTorch >= 2.4 (this build has " DUET_TORCH_VERSION
        "); use 'fp32'");
  }
  if (c.loss.implementation == LossImplementation::kFused && c.train.device == DeviceChoice::kCpu) {
    add("loss.implementation",
        "loss.implementation 'fused' runs on CUDA devices, but train.device is 'cpu'; use 'auto' "
        "or 'tiled'");
  }
  if (c.loss.implementation == LossImplementation::kFused && !DUET_CUDA) {
    add("loss.implementation",
        "loss.implementation 'fused': this duet was built without the CUDA kernels (`duet "
        "--version` says); use 'auto', 'tiled' or 'reference'");
  }
}

std::vector<Inconsistency> inconsistencies(const Config& c) {
  std::vector<Inconsistency> out;
  const AddInconsistency add = [&out](std::string key, std::string message) {
    out.push_back({std::move(key), std::move(message)});
  };
  model_rules(c, add);
  training_rules(c, add);
  data_rules(c, add);
  run_rules(c, add);
  return out;
}

Config bind(FlatMap& flat) {
  Config config;
  std::vector<std::string> problems;
  Binder binder(flat, problems);
  config.visit(binder);

  std::vector<std::string> known;
  for (const auto& key : all_keys()) {
    known.push_back(key.path);
  }
  for (const auto& [path, entry] : flat) {
    if (entry.used) {
      continue;
    }
    // A mapping given where a scalar field is expected shows up as keys below that field.
    const KeyInfo* field_above = nullptr;
    for (const auto& key : all_keys()) {
      if (!key.is_section && path.rfind(key.path + ".", 0) == 0) {
        field_above = &key;
      }
    }
    if (field_above != nullptr) {
      problems.push_back(fmt::format(
          "{}: {}: expected {}, got a mapping (with key '{}')", entry.where, field_above->path,
          with_article(field_above->type), path.substr(field_above->path.size() + 1)));
      continue;
    }
    std::string message = fmt::format("{}: unknown key '{}'", entry.where, path);
    const std::string guess = nearest(path, known);
    if (!guess.empty()) {
      message += fmt::format(" (did you mean '{}'?)", guess);
    }
    problems.push_back(message);
  }
  if (problems.empty()) {
    for (const auto& issue : inconsistencies(config)) {
      // Report at the most specific place the user set one of the keys involved.
      std::string where;
      for (auto it = flat.lower_bound(issue.key); it != flat.end(); ++it) {
        if (it->first == issue.key || it->first.rfind(issue.key + ".", 0) == 0) {
          where = it->second.where + ": ";
        }
        break;
      }
      problems.push_back(where + issue.message);
    }
  }
  if (!problems.empty()) {
    std::string message = problems.size() == 1 ? "invalid config: " : "invalid config:\n  ";
    for (size_t i = 0; i < problems.size(); ++i) {
      message += (i ? "\n  " : "") + problems[i];
    }
    config_error(message);
  }
  return config;
}

Config load_flat(FlatMap flat, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    apply_override(o, flat);
  }
  return bind(flat);
}

}  // namespace

std::string Rule::describe() const {
  if (!choices.empty()) {
    std::string s = "one of: ";
    for (size_t i = 0; i < choices.size(); ++i) {
      s += (i ? ", " : "") + choices[i];
    }
    return s;
  }
  if (min && max) {
    return fmt::format("in {}{}, {}{}", min_exclusive ? "(" : "[", format_number(*min),
                       format_number(*max), max_exclusive ? ")" : "]");
  }
  if (min) {
    return fmt::format("{} {}", min_exclusive ? ">" : ">=", format_number(*min));
  }
  if (max) {
    return fmt::format("{} {}", max_exclusive ? "<" : "<=", format_number(*max));
  }
  return {};
}

std::vector<std::string> include_search_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("DUET_CONFIG_PATH")) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (!dir.empty()) {
        dirs.push_back(dir);
      }
    }
  }
  dirs.push_back(std::string(DUET_SOURCE_DIR) + "/configs");
  return dirs;
}

Config load(const std::string& path, const std::vector<std::string>& overrides) {
  FlatMap flat;
  std::vector<std::string> stack;
  load_file(path, "", stack, flat);
  return load_flat(std::move(flat), overrides);
}

Config load_string(const std::string& yaml, const std::string& origin,
                   const std::vector<std::string>& overrides) {
  FlatMap flat;
  std::vector<std::string> stack{origin};
  load_source(yaml, origin, fs::path(origin).parent_path(), stack, flat);
  return load_flat(std::move(flat), overrides);
}

std::vector<std::string> check_consistency(const Config& config) {
  std::vector<std::string> messages;
  for (const auto& issue : inconsistencies(config)) {
    messages.push_back(issue.message);
  }
  return messages;
}

std::string to_yaml(const Config& config) {
  Config copy = config;  // the visitors take mutable references
  YAML::Emitter out;
  out << YAML::BeginMap;
  Emitter emitter(out);
  copy.visit(emitter);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string reference_markdown() {
  std::string md =
      "# Configuration reference\n\n"
      "Generated by `duet config reference` from the declarations in `src/config/config.h`;\n"
      "do not edit by hand. A config file sets any of these keys (nested mappings or dotted\n"
      "keys), may `include:` other files (later values win), and `--set KEY=VALUE` on the\n"
      "command line overrides both.\n";
  for (const auto& key : all_keys()) {
    if (key.is_section) {
      md += fmt::format(
          "\n## `{}`\n\n{}\n\n| key | type | default | allowed | description |\n"
          "| --- | --- | --- | --- | --- |\n",
          key.path, key.help);
      continue;
    }
    std::string help = key.help;
    std::replace(help.begin(), help.end(), '|', '/');
    md += fmt::format("| `{}` | {} | `{}` | {} | {} |\n", key.path, key.type, key.default_value,
                      key.rule, help);
  }
  return md;
}

}  // namespace duet::config
