// metrics.jsonl: lines parse back with a strict JSON parser, each line survives SIGKILL right
// after write() returns, resumes drop the lines after the resumed step, torn last lines are
// tolerated, and NaN/Inf stay valid JSON (null).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/test_util.h"
#include "train/metrics_jsonl.h"

namespace {

using duet::test::read_file;
using duet::test::TempDir;
using duet::test::write_file;
using duet::train::MetricsJsonl;
using duet::train::read_metrics_jsonl;
using duet::train::truncate_metrics_jsonl;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  for (size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', begin)) {
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  REQUIRE(begin == text.size());  // every line ends with a newline
  return lines;
}

std::vector<int64_t> steps_in(const std::string& path) {
  std::vector<int64_t> steps;
  for (const auto& record : read_metrics_jsonl(path)) {
    steps.push_back(record.step);
  }
  return steps;
}

void write_steps(const std::string& path, const std::vector<int64_t>& steps) {
  MetricsJsonl metrics(path);
  for (int64_t step : steps) {
    metrics.write(step, {{"loss", 1.0 / static_cast<double>(step)}});
  }
}

}  // namespace

TEST_CASE("metrics.jsonl lines are JSON objects with step, time and the scalars in order") {
  TempDir dir;
  const std::string path = dir / "run/metrics.jsonl";  // the run directory does not exist yet
  {
    MetricsJsonl metrics(path);
    CHECK(metrics.path() == path);
    metrics.write(100, 1732348800.25,
                  {{"loss", 1.234567890123}, {"lr", 5e-4}, {"logit_scale", 14.28}});
    metrics.write(200, 1732348900.5, {{"loss", 0.5}, {"zero_shot_top1", 0.8125}});
    const double before = duet::train::unix_time_now();
    metrics.write(300, {{"loss", 0.25}});
    const double after = duet::train::unix_time_now();
    const auto last = nlohmann::json::parse(lines_of(read_file(path)).back());
    CHECK(last["time"].get<double>() >= before);
    CHECK(last["time"].get<double>() <= after);
  }
  const auto lines = lines_of(read_file(path));
  REQUIRE(lines.size() == 3);
  const auto first = nlohmann::ordered_json::parse(lines[0]);
  std::vector<std::string> keys;
  for (const auto& item : first.items()) {
    keys.push_back(item.key());
  }
  CHECK(keys == std::vector<std::string>{"step", "time", "loss", "lr", "logit_scale"});
  CHECK(first["step"].get<int64_t>() == 100);
  CHECK(first["time"].get<double>() == 1732348800.25);
  CHECK(first["loss"].get<double>() == 1.234567890123);  // shortest round-trip digits
  CHECK(first["lr"].get<double>() == 5e-4);

  const auto records = read_metrics_jsonl(path);
  REQUIRE(records.size() == 3);
  CHECK(records[1].step == 200);
  CHECK(records[1].time == 1732348900.5);
  REQUIRE(records[1].scalars.size() == 2);
  CHECK(records[1].scalars[1].name == "zero_shot_top1");
  CHECK(records[1].scalars[1].value == 0.8125);

  // Reopening appends.
  MetricsJsonl(path).write(400, {{"loss", 0.125}});
  CHECK(steps_in(path) == std::vector<int64_t>{100, 200, 300, 400});
}

TEST_CASE("metrics.jsonl writes NaN and infinities as null, read back as NaN") {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  const double inf = std::numeric_limits<double>::infinity();
  MetricsJsonl(path).write(7, std::numeric_limits<double>::quiet_NaN(),
                           {{"loss", std::numeric_limits<double>::quiet_NaN()},
                            {"grad_norm", inf},
                            {"x", -inf},
                            {"y", 2.0}});
  const std::string line = lines_of(read_file(path)).at(0);
  CHECK(line == R"({"step":7,"time":null,"loss":null,"grad_norm":null,"x":null,"y":2.0})");
  const auto records = read_metrics_jsonl(path);
  REQUIRE(records.size() == 1);
  CHECK(std::isnan(records[0].time));
  REQUIRE(records[0].scalars.size() == 4);
  CHECK(std::isnan(records[0].scalars[0].value));
  CHECK(std::isnan(records[0].scalars[1].value));
  CHECK(std::isnan(records[0].scalars[2].value));
  CHECK(records[0].scalars[3].value == 2.0);
}

TEST_CASE("metrics.jsonl keeps every line written before the process is killed") {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // No destructor, no exit handlers, no stdio flush: only what write() handed to the kernel.
    MetricsJsonl metrics(path);
    metrics.write(1, {{"loss", 2.0}});
    metrics.write(2, {{"loss", 1.5}});
    raise(SIGKILL);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(steps_in(path) == std::vector<int64_t>{1, 2});
}

TEST_CASE("metrics.jsonl drops the lines after a resumed step") {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  write_steps(path, {10, 20, 30, 40, 50});

  SECTION("truncate_metrics_jsonl") {
    CHECK(truncate_metrics_jsonl(path, 30) == 2);
    CHECK(steps_in(path) == std::vector<int64_t>{10, 20, 30});
    const std::string unchanged = read_file(path);
    CHECK(truncate_metrics_jsonl(path, 30) == 0);
    CHECK(truncate_metrics_jsonl(path, 1000) == 0);
    CHECK(read_file(path) == unchanged);
    CHECK(truncate_metrics_jsonl(path, 0) == 3);
    CHECK(read_file(path).empty());
  }
  SECTION("the writer's resumed_step, then appending") {
    MetricsJsonl metrics(path, 20);
    metrics.write(30, {{"loss", 0.3}});
    CHECK(steps_in(path) == std::vector<int64_t>{10, 20, 30});
    const auto records = read_metrics_jsonl(path);
    CHECK(records[2].scalars.at(0).value == 0.3);  // the new line, not the old step 30
  }
  SECTION("a missing file stays missing") {
    CHECK(truncate_metrics_jsonl(dir / "none.jsonl", 5) == 0);
    CHECK_FALSE(std::filesystem::exists(dir / "none.jsonl"));
  }
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("metrics.jsonl tolerates a torn last line and repairs it before appending") {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  write_steps(path, {1, 2});
  write_file(path, read_file(path) + R"({"step":3,"time":17323)");  // killed mid-write
  CHECK(steps_in(path) == std::vector<int64_t>{1, 2});

  SECTION("reopening drops it") {
    MetricsJsonl(path).write(3, {{"loss", 0.3}});
    CHECK(steps_in(path) == std::vector<int64_t>{1, 2, 3});
    CHECK(lines_of(read_file(path)).size() == 3);
  }
  SECTION("truncation drops it") {
    CHECK(truncate_metrics_jsonl(path, 100) == 1);
    CHECK(lines_of(read_file(path)).size() == 2);
  }
  SECTION("a complete last line without its newline is kept") {
    write_file(path, read_file(path).substr(0, read_file(path).rfind('\n') + 1) +
                         R"({"step":3,"loss":0.5})");
    CHECK(steps_in(path) == std::vector<int64_t>{1, 2, 3});
    MetricsJsonl(path).write(4, {{"loss", 0.25}});
    CHECK(steps_in(path) == std::vector<int64_t>{1, 2, 3, 4});
  }
}

TEST_CASE("metrics.jsonl errors name the file and the line") {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  write_file(path, "{\"step\":1,\"loss\":1}\nnot json\n{\"step\":3}\n");
  CHECK_THROWS_WITH(read_metrics_jsonl(path), Catch::Contains(path + ":2"));
  CHECK_THROWS_WITH(truncate_metrics_jsonl(path, 1), Catch::Contains(path + ":2"));
  write_file(path, "{\"loss\":1}\n");
  CHECK_THROWS_WITH(read_metrics_jsonl(path), Catch::Contains("integer \"step\""));
  CHECK_THROWS_WITH(read_metrics_jsonl(dir / "missing.jsonl"),
                    Catch::Contains(dir / "missing.jsonl"));

  // A directory where a parent directory should be: not writable, whoever runs the test.
  write_file(dir / "file", "x");
  const std::string unwritable = dir / "file/run/metrics.jsonl";
  CHECK_THROWS_AS(MetricsJsonl(unwritable), duet::Error);
  CHECK_THROWS_WITH(MetricsJsonl(unwritable), Catch::Contains(unwritable));

  MetricsJsonl metrics(path + "2");
  CHECK_THROWS_WITH(metrics.write(1, {{"step", 1.0}}), Catch::Contains("'step'"));
  CHECK_THROWS_WITH(metrics.write(1, {{"loss", 1.0}, {"loss", 2.0}}), Catch::Contains("'loss'"));
  CHECK(read_file(path + "2").empty());  // nothing half-written
}
