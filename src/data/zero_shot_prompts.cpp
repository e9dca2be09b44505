// Reading class names and templates (see zero_shot_prompts.h).
#include "data/zero_shot_prompts.h"

#include <fstream>
#include <utility>

#include "common/error.h"
#include "common/strings.h"

namespace duet::data {
namespace {

struct Line {
  int number = 0;
  std::string text;
};

std::vector<Line> read_entries(const std::string& path, const char* what) {
  std::ifstream in(path);
  DUET_CHECK(in.good(), "cannot open the zero-shot {} file '{}'", what, path);
  std::vector<Line> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string entry = trim(line);  // also drops a CRLF file's \r
    if (entry.empty() || entry[0] == '#') {
      continue;
    }
    out.push_back({number, std::move(entry)});
  }
  DUET_CHECK(!out.empty(), "the zero-shot {} file '{}' has no entries", what, path);
  return out;
}

}  // namespace

std::string fill_template(const std::string& pattern, const std::string& classname) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t hit = pattern.find("{}", pos);
    if (hit == std::string::npos) {
      out += pattern.substr(pos);
      return out;
    }
    out += pattern.substr(pos, hit - pos);
    out += classname;
    pos = hit + 2;
  }
}

std::vector<std::vector<std::string>> ZeroShotPrompts::prompts() const {
  std::vector<std::vector<std::string>> out;
  out.reserve(classnames.size());
  for (const auto& name : classnames) {
    std::vector<std::string> row;
    row.reserve(templates.size());
    for (const auto& t : templates) {
      row.push_back(fill_template(t, name));
    }
    out.push_back(std::move(row));
  }
  return out;
}

ZeroShotPrompts read_zero_shot_prompts(const std::string& classnames_path,
                                       const std::string& templates_path) {
  ZeroShotPrompts p;
  for (auto& line : read_entries(classnames_path, "classnames")) {
    p.classnames.push_back(std::move(line.text));
  }
  for (auto& line : read_entries(templates_path, "templates")) {
    DUET_CHECK(line.text.find("{}") != std::string::npos,
               "{}:{}: template '{}' has no '{{}}' for the class name", templates_path, line.number,
               line.text);
    p.templates.push_back(std::move(line.text));
  }
  return p;
}

}  // namespace duet::data
