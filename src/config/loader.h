#pragma once
// Loading a Config: YAML files with `include:`, `--set key=value` overrides, schema binding and
// cross-field validation. Every problem found is reported at once in one config Error (exit 2)
// whose lines name the key path, where it was set (file:line or the --set), and the value.
#include <string>
#include <vector>

#include "config/config.h"

namespace duet::config {

// Reads `path` and the files it includes, applies `overrides` ("a.b.c=value", the value parsed
// as YAML, so lists work: "data.train=[a.tar,b.tar]"), and validates the result.
Config load(const std::string& path, const std::vector<std::string>& overrides = {});

// The same for YAML text; `origin` names it in messages and anchors relative includes.
Config load_string(const std::string& yaml, const std::string& origin,
                   const std::vector<std::string>& overrides = {});

// Cross-field rules (divisibility, ranges that depend on other keys, ...). Returns one message
// per broken rule, naming the keys and their values; empty when the config is consistent.
std::vector<std::string> check_consistency(const Config& config);

// The fully resolved config as YAML that `load` reads back to the same Config.
std::string to_yaml(const Config& config);

// Markdown reference of every key: type, default, allowed values and help.
std::string reference_markdown();

// Directories searched for includes that are not found beside the including file: the
// colon-separated DUET_CONFIG_PATH, then the source tree's configs/.
std::vector<std::string> include_search_path();

}  // namespace duet::config
