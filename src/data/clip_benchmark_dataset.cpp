// CLIP_benchmark's WebDataset layout (see clip_benchmark_dataset.h): metadata files, prompt
// filling with Python's str.format rules, and the .npy targets of multilabel sets.
#include "data/clip_benchmark_dataset.h"

#include <archive.h>
#include <archive_entry.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/error.h"
#include "common/strings.h"
#include "data/webdataset_source.h"

namespace duet::data {
namespace {

namespace fs = std::filesystem;

bool read_text(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

// CLIP_benchmark's [line.strip() for line in text.splitlines()], without blank lines (a blank
// template or class name is a mistake in the file, not an entry).
std::vector<std::string> read_stripped_lines(const fs::path& path) {
  std::string text;
  if (!read_text(path, text)) {
    fail("CLIP_benchmark dataset: cannot read '{}'", path.string());
  }
  std::vector<std::string> lines;
  for (const auto& line : split_caption_lines(text)) {
    std::string s = trim(line);
    if (!s.empty()) {
      lines.push_back(std::move(s));
    }
  }
  DUET_CHECK(!lines.empty(), "CLIP_benchmark dataset: '{}' has no entry", path.string());
  return lines;
}

// Element count and positives of a small .npy array (format 1.x/2.x, C order, any numeric
// dtype); false when the bytes are not such an array.
bool parse_npy_targets(const std::string& bytes, int64_t classes, std::vector<uint8_t>& out) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) {
    return false;
  }
  const auto major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len =
        static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    offset = 10;
  } else if (bytes.size() >= 12) {
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + static_cast<size_t>(i)]))
                    << (8 * i);
    }
    offset = 12;
  } else {
    return false;
  }
  if (offset + header_len > bytes.size()) {
    return false;
  }
  const std::string header = bytes.substr(offset, header_len);
  const size_t d = header.find("'descr'");
  const size_t q1 = header.find('\'', header.find(':', d) + 1);
  const size_t q2 = q1 == std::string::npos ? q1 : header.find('\'', q1 + 1);
  if (d == std::string::npos || q2 == std::string::npos ||
      header.find("'fortran_order': True") != std::string::npos) {
    return false;
  }
  const std::string descr = header.substr(q1 + 1, q2 - q1 - 1);
  if (descr.size() < 3 || descr[0] == '>') {
    return false;
  }
  const char kind = descr[1];
  int width = 0;
  std::from_chars(descr.data() + 2, descr.data() + descr.size(), width);
  const char* data = bytes.data() + offset + header_len;
  const size_t available = bytes.size() - offset - header_len;
  if (width <= 0 || available < static_cast<size_t>(classes) * static_cast<size_t>(width) ||
      available > static_cast<size_t>(classes) * static_cast<size_t>(width)) {
    return false;  // not exactly `classes` elements
  }
  out.assign(static_cast<size_t>(classes), 0);
  for (int64_t c = 0; c < classes; ++c) {
    const char* p = data + c * width;
    bool positive = false;
    if (kind == 'f' && width == 4) {
      float v = 0;
      std::memcpy(&v, p, 4);
      positive = v != 0.0f;
    } else if (kind == 'f' && width == 8) {
      double v = 0;
      std::memcpy(&v, p, 8);
      positive = v != 0.0;
    } else if (kind == 'b' || kind == 'u' || kind == 'i') {
      for (int i = 0; i < width; ++i) {
        positive = positive || p[i] != 0;
      }
    } else {
      return false;
    }
    out[static_cast<size_t>(c)] = positive ? 1 : 0;
  }
  return true;
}

}  // namespace

const char* benchmark_task_name(BenchmarkTask task) {
  return task == BenchmarkTask::kRetrieval ? "zeroshot_retrieval" : "zeroshot_classification";
}

bool is_clip_benchmark_dataset(const std::string& dir, const std::string& split) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / split / "nshards.txt", ec);
}

ClipBenchmarkDataset read_clip_benchmark_dataset(const std::string& dir, const std::string& split) {
  ClipBenchmarkDataset d;
  d.dir = dir;
  d.split = split;
  const fs::path root(dir);
  std::error_code ec;
  DUET_CHECK(fs::is_directory(root, ec), "CLIP_benchmark dataset: no directory '{}'", dir);
  std::string base = fs::absolute(root).lexically_normal().filename().string();
  if (base.empty()) {
    base = fs::absolute(root).lexically_normal().parent_path().filename().string();
  }
  d.name = base + "/" + split;

  const fs::path nshards_path = root / split / "nshards.txt";
  std::string text;
  if (!read_text(nshards_path, text)) {
    fail("CLIP_benchmark dataset '{}': no split '{}' ('{}' is missing)", dir, split,
         nshards_path.string());
  }
  const std::string count_text = trim(text);
  int64_t nshards = 0;
  const auto [end, err] =
      std::from_chars(count_text.data(), count_text.data() + count_text.size(), nshards);
  DUET_CHECK(err == std::errc() && end == count_text.data() + count_text.size() && nshards > 0,
             "CLIP_benchmark dataset: '{}' must hold a positive shard count, got '{}'",
             nshards_path.string(), count_text);
  for (int64_t i = 0; i < nshards; ++i) {
    const fs::path shard = root / split / (std::to_string(i) + ".tar");
    DUET_CHECK(fs::is_regular_file(shard, ec),
               "CLIP_benchmark dataset: '{}' says {} shards but '{}' is missing",
               nshards_path.string(), nshards, shard.string());
    d.shards.push_back(shard.string());
  }

  const fs::path type_path = root / "dataset_type.txt";
  std::string type = "classification";
  if (read_text(type_path, text)) {
    type = trim(text);
    for (auto& c : type) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (type == "retrieval") {
    d.task = BenchmarkTask::kRetrieval;
    return d;
  }
  if (type == "multilabel") {
    d.task = BenchmarkTask::kMultilabel;
  } else if (type != "classification") {
    fail(
        "CLIP_benchmark dataset: '{}' says '{}'; expected classification, retrieval or "
        "multilabel",
        type_path.string(), type);
  }
  d.classnames = read_stripped_lines(root / "classnames.txt");
  const fs::path templates_path = root / "zeroshot_classification_templates.txt";
  d.templates = read_stripped_lines(templates_path);
  for (size_t i = 0; i < d.templates.size(); ++i) {
    fill_benchmark_template(d.templates[i], "x",
                            fmt::format("{} template {}", templates_path.string(), i + 1));
  }
  return d;
}

ClipBenchmarkDataset read_clip_benchmark_spec(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size() &&
      spec.find('/', colon) == std::string::npos) {
    return read_clip_benchmark_dataset(spec.substr(0, colon), spec.substr(colon + 1));
  }
  return read_clip_benchmark_dataset(spec);
}

std::string fill_benchmark_template(const std::string& pattern, const std::string& classname,
                                    const std::string& where) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char ch = pattern[i];
    if ((ch == '{' || ch == '}') && i + 1 < pattern.size() && pattern[i + 1] == ch) {
      out += ch;
      ++i;
    } else if (pattern.compare(i, 3, "{c}") == 0) {
      out += classname;
      i += 2;
    } else if (ch == '{' || ch == '}') {
      fail(
          "{}: '{}' has a replacement field other than {{c}} (CLIP_benchmark fills templates "
          "with str.format(c=classname))",
          where, pattern);
    } else {
      out += ch;
    }
  }
  return out;
}

std::vector<std::vector<std::string>> benchmark_prompts(const ClipBenchmarkDataset& dataset) {
  std::vector<std::vector<std::string>> prompts;
  for (const auto& name : dataset.classnames) {
    std::vector<std::string> filled;
    for (const auto& t : dataset.templates) {
      filled.push_back(fill_benchmark_template(t, name));
    }
    prompts.push_back(std::move(filled));
  }
  return prompts;
}

std::vector<std::string> split_caption_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\n' || ch == '\r') {
      lines.push_back(line);
      line.clear();
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;
      }
    } else {
      line += ch;
    }
  }
  if (!line.empty()) {
    lines.push_back(line);
  }
  return lines;
}

std::map<std::string, std::vector<uint8_t>> read_multilabel_targets(
    const std::vector<std::string>& shards, int64_t classes) {
  std::map<std::string, std::vector<uint8_t>> targets;
  for (const auto& shard : shards) {
    std::unique_ptr<archive, int (*)(archive*)> owner(archive_read_new(), archive_read_free);
    archive* a = owner.get();
    archive_read_support_format_tar(a);
    archive_read_support_filter_all(a);
    if (archive_read_open_filename(a, shard.c_str(), 1 << 20) != ARCHIVE_OK) {
      fail("CLIP_benchmark dataset: cannot open '{}': {}", shard, archive_error_string(a));
    }
    archive_entry* entry = nullptr;
    while (archive_read_next_header(a, &entry) >= ARCHIVE_WARN) {
      const char* name = archive_entry_pathname(entry);
      if (archive_entry_filetype(entry) != AE_IFREG || name == nullptr) {
        continue;
      }
      auto [key, ext] = split_member_name(name);
      if (ext != "npy") {
        continue;
      }
      if (key.rfind("./", 0) == 0) {
        key.erase(0, 2);
      }
      const int64_t size = archive_entry_size(entry);
      DUET_CHECK(size > 0 && size < (int64_t{1} << 26), "'{}:{}': implausible .npy size {}", shard,
                 name, size);
      std::string bytes(static_cast<size_t>(size), '\0');
      DUET_CHECK(archive_read_data(a, bytes.data(), bytes.size()) == size,
                 "'{}': truncated member '{}'", shard, name);
      std::vector<uint8_t> target;
      if (!parse_npy_targets(bytes, classes, target)) {
        fail(
            "'{}:{}': multilabel targets must be a C-order .npy vector of {} numbers (one per "
            "line of classnames.txt)",
            shard, name, classes);
      }
      targets[shard + ":" + key] = std::move(target);
    }
  }
  return targets;
}

}  // namespace duet::data
