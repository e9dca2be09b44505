#pragma once
// A resolved Config as flat (key path, value) pairs in declaration order, values written as
// `config show` would ("train.batch_size" -> "256", "data.mean" -> "[0.48, 0.45, 0.4]").
// Distributed jobs compare these across ranks to name the keys on which ranks disagree.
// Implemented in loader.cpp with the same schema visitor as `config reference`.
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace duet::config {

using KeyValue = std::pair<std::string, std::string>;

std::vector<KeyValue> key_values(const Config& config);

}  // namespace duet::config
