#pragma once
// Class names and prompt templates for zero-shot classification (eval.zero_shot.classnames and
// eval.zero_shot.templates): text files with one entry per line; blank lines and lines starting
// with '#' are ignored; each template contains "{}" where the class name goes (OpenAI's
// templates, e.g. "a photo of a {}."). Missing files, empty lists and templates without "{}"
// are a duet::Error naming the file and line. Torch-free.
#include <string>
#include <vector>

namespace duet::data {

struct ZeroShotPrompts {
  std::vector<std::string> classnames;  // index = class index of the labelled set
  std::vector<std::string> templates;

  // prompts()[c][t]: templates[t] filled with classnames[c].
  std::vector<std::vector<std::string>> prompts() const;
};

ZeroShotPrompts read_zero_shot_prompts(const std::string& classnames_path,
                                       const std::string& templates_path);

// Replaces every "{}" in `pattern` with `classname`.
std::string fill_template(const std::string& pattern, const std::string& classname);

}  // namespace duet::data
