// metrics.jsonl writing, reading and truncation (see metrics_jsonl.h).
#include "train/metrics_jsonl.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/logging.h"

namespace duet::train {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A metrics file split into its newline-terminated lines and what follows the last newline.
struct SplitFile {
  std::vector<std::string> lines;
  std::string tail;  // empty unless the last line has no newline
};

SplitFile read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DUET_CHECK(in, "cannot read metrics file '{}': {}", path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  SplitFile split;
  size_t begin = 0;
  for (size_t end = content.find('\n'); end != std::string::npos; end = content.find('\n', begin)) {
    split.lines.push_back(content.substr(begin, end - begin));
    begin = end + 1;
  }
  split.tail = content.substr(begin);
  return split;
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// The JSON object of one line, or a discarded value when it is not a metrics line.
nlohmann::ordered_json parse_line(const std::string& line) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) {
    return nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
  }
  return j;
}

MetricsRecord to_record(const nlohmann::ordered_json& j) {
  MetricsRecord record;
  record.step = j["step"].get<int64_t>();
  record.time = j.contains("time") && j["time"].is_number() ? j["time"].get<double>() : kNaN;
  for (const auto& [key, value] : j.items()) {
    if (key == "step" || key == "time") {
      continue;
    }
    if (value.is_number()) {
      record.scalars.push_back({key, value.get<double>()});
    } else if (value.is_null()) {
      record.scalars.push_back({key, kNaN});
    }
  }
  return record;
}

// Removes the lines after `last_step` (when given) and a torn tail, then returns the path.
// Runs before the writer opens the file, so the file it appends to is already consistent.
std::string prepare_for_append(std::string path, std::optional<int64_t> last_step) {
  if (std::filesystem::exists(path)) {
    truncate_metrics_jsonl(path, last_step.value_or(std::numeric_limits<int64_t>::max()));
  }
  return path;
}

}  // namespace

MetricsJsonl::MetricsJsonl(std::string path, std::optional<int64_t> resumed_step)
    : file_(prepare_for_append(std::move(path), resumed_step), MetricsFile::Mode::kAppend) {}

void MetricsJsonl::write(int64_t step, const Scalars& scalars) {
  write(step, unix_time_now(), scalars);
}

void MetricsJsonl::write(int64_t step, double time, const Scalars& scalars) {
  file_.append(metrics_json_line(step, time, scalars) + "\n");
}

std::string metrics_json_line(int64_t step, double time, const Scalars& scalars) {
  nlohmann::ordered_json j;
  j["step"] = step;
  j["time"] = std::isfinite(time) ? nlohmann::ordered_json(time) : nlohmann::ordered_json();
  for (const Scalar& s : scalars) {
    DUET_CHECK(!s.name.empty() && !j.contains(s.name),
               "metrics at step {}: scalar name '{}' is empty, reserved or repeated", step, s.name);
    // JSON has no NaN or Inf: null keeps the line valid for every reader.
    j[s.name] = std::isfinite(s.value) ? nlohmann::ordered_json(s.value) : nlohmann::ordered_json();
  }
  // Invalid UTF-8 in a name is replaced rather than thrown on: a log line is not worth a crash.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::vector<MetricsRecord> read_metrics_jsonl(const std::string& path) {
  const SplitFile split = read_lines(path);
  std::vector<MetricsRecord> records;
  for (size_t i = 0; i < split.lines.size(); ++i) {
    if (is_blank(split.lines[i])) {
      continue;
    }
    const nlohmann::ordered_json j = parse_line(split.lines[i]);
    DUET_CHECK(!j.is_discarded(),
               "{}:{}: not a metrics line (a JSON object with an integer \"step\"): {}", path,
               i + 1, split.lines[i].substr(0, 200));
    records.push_back(to_record(j));
  }
  if (!is_blank(split.tail)) {
    const nlohmann::ordered_json j = parse_line(split.tail);
    if (j.is_discarded()) {
      log::get("train")->warn("{}:{}: skipping a torn last line (the run stopped mid-write?)", path,
                              split.lines.size() + 1);
    } else {
      records.push_back(to_record(j));
    }
  }
  return records;
}

int64_t truncate_metrics_jsonl(const std::string& path, int64_t last_step) {
  if (!std::filesystem::exists(path)) {
    return 0;
  }
  const SplitFile split = read_lines(path);
  std::string kept;
  int64_t removed = 0;  // lines with step > last_step
  for (size_t i = 0; i < split.lines.size(); ++i) {
    const std::string& line = split.lines[i];
    if (is_blank(line)) {
      continue;
    }
    const nlohmann::ordered_json j = parse_line(line);
    DUET_CHECK(!j.is_discarded(),
               "{}:{}: not a metrics line (a JSON object with an integer \"step\"): {}", path,
               i + 1, line.substr(0, 200));
    if (j["step"].get<int64_t>() > last_step) {
      ++removed;
    } else {
      kept += line + "\n";
    }
  }
  bool torn = false;
  if (!is_blank(split.tail)) {
    const nlohmann::ordered_json j = parse_line(split.tail);
    if (j.is_discarded()) {
      log::get("train")->warn("{}: dropping a torn last line (the run stopped mid-write?)", path);
      torn = true;
    } else if (j["step"].get<int64_t>() > last_step) {
      ++removed;
    } else {
      kept += split.tail + "\n";  // a complete last line that only lacks its newline
    }
  }
  if (removed == 0 && !torn && split.tail.empty()) {
    return 0;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    DUET_CHECK(out, "cannot write '{}': {}", tmp, std::strerror(errno));
    out << kept;
    out.close();
    DUET_CHECK(out, "cannot write '{}': {}", tmp, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  DUET_CHECK(!ec, "cannot replace '{}' with '{}': {}", path, tmp, ec.message());
  if (removed > 0) {
    log::get("train")->info("{}: removed {} line(s) logged after step {}", path, removed,
                            last_step);
  }
  return removed + (torn ? 1 : 0);
}

}  // namespace duet::train
