#pragma once
// Brace expansion of shard patterns, as WebDataset and OpenCLIP accept them:
//   "shards/{00000..00127}.tar"  -> shards/00000.tar ... shards/00127.tar (zero padding kept)
//   "{train,extra}/{0..3}.tar"   -> the cross product, left to right
// Numeric ranges keep the width of the wider bound when either bound has a leading zero, like
// bash. Malformed patterns (unbalanced braces, a range with a non-number, a descending or huge
// range) are a duet::Error naming the pattern.
#include <string>
#include <vector>

namespace duet::data {

std::vector<std::string> expand_braces(const std::string& pattern);

}  // namespace duet::data
