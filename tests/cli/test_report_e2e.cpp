// The run report end to end, as a person would see it: Fashion-MNIST built by `duet data
// fashion-mnist`, a tiny CLIP trained for a few steps with zero-shot, retrieval and a
// CLIP_benchmark set evaluated twice, `duet report`, then the page opened in headless
// Chromium (Debian's `chromium`):
//   - the DOM after rendering has every expected section, and the page's inline script ran
//     (it marks <body data-rendered>); Chromium's log has no JavaScript error;
//   - every metric the page shows equals metrics.jsonl's last value exactly, and `duet eval
//     --json` of the final checkpoint;
//   - a screenshot is not blank (many distinct colours, not all white);
//   - the page is self-contained (no http:, src="/..." or external script) and small.
// Without Chromium the rendering checks print "WARN: skipped" (CTest marks the test skipped);
// with CI=true a missing Chromium fails.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "data/fashion_mnist.h"
#include "data/image_decode.h"
#include "data/zero_shot_prompts.h"
#include "train/metrics.h"

namespace {

using duet::test::read_file;
using duet::test::run_duet;
using duet::test::shell_quote;
using duet::test::TempDir;
using duet::test::write_file;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    if (std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0) {
      return name;
    }
  }
  return "";
}

// Runs a shell command, stdout and stderr to files; returns the exit status.
int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Every data-metric="NAME" data-value="VALUE" pair of the page (std::regex would recurse once
// per character of a page this size and overflow the stack).
std::map<std::string, double> shown_metrics(const std::string& html) {
  std::map<std::string, double> shown;
  const std::string name_attr = "data-metric=\"";
  const std::string value_attr = "\" data-value=\"";
  for (size_t at = html.find(name_attr); at != std::string::npos;
       at = html.find(name_attr, at + 1)) {
    const size_t name_begin = at + name_attr.size();
    const size_t name_end = html.find(value_attr, name_begin);
    const size_t value_begin = name_end + value_attr.size();
    const size_t value_end = html.find('"', value_begin);
    const std::string value = html.substr(value_begin, value_end - value_begin);
    shown[html.substr(name_begin, name_end - name_begin)] =
        value == "nan" ? std::nan("") : std::stod(value);
  }
  return shown;
}

}  // namespace

TEST_CASE("e2e: duet report renders a trained run in headless Chromium") {
  TempDir dir;
  const std::string data = dir / "fm";
  REQUIRE(run_duet({"--log-level", "warn", "data", "fashion-mnist", "--out", data}).exit_code == 0);
  std::string captions;
  for (const auto& t : duet::data::fashion_mnist_templates()) {
    for (const auto& c : duet::data::fashion_mnist_classes()) {
      captions += duet::data::fill_template(t, c) + "\n";
    }
  }
  write_file(dir / "captions.txt", captions);
  REQUIRE(run_duet({"--log-level", "warn", "tokenizer", "train", "--input", dir / "captions.txt",
                    "--vocab-size", "56", "--out", data + "/spm"})
              .exit_code == 0);
  const std::string config = dir / "run.yaml";
  write_file(config, fmt::format(R"(
include: {0}/configs/models/tiny.yaml
model:
  vision: {{patch_size: 7, layers: 2}}
  text: {{layers: 1, context_length: 16, vocab_size: 56}}
tokenizer: {{type: sentencepiece, path: "{1}/spm.model"}}
data:
  train: ["{1}/train/{{000000..000011}}.tar"]
  mean: [0.286, 0.286, 0.286]
  std: [0.353, 0.353, 0.353]
optim: {{lr: 0.001}}
schedule: {{warmup_steps: 5}}
train: {{steps: 40, batch_size: 128, device: cpu, threads: 2, output_dir: "{2}", run_name: r}}
eval:
  every_steps: 20
  batch_size: 1000
  zero_shot: {{source: "{1}/test", classnames: "{1}/classnames.txt", templates: "{1}/templates.txt"}}
  retrieval: ["{1}/test/0.tar"]
  benchmarks: ["{1}"]
logging: {{every_steps: 10, tensorboard: false}}
)",
                                 DUET_TEST_SOURCE_DIR, data, dir / "runs"));
  const auto trained = run_duet({"train", "-c", config});
  INFO(trained.out << trained.err);
  REQUIRE(trained.exit_code == 0);
  const std::string run_dir = dir / "runs/r";
  const std::string report = run_dir + "/report.html";
  CHECK_THAT(trained.out, Catch::Contains("report: " + report));
  const auto redrawn = run_duet({"report", run_dir});
  REQUIRE(redrawn.exit_code == 0);
  const std::string html = read_file(report);

  {  // self-contained, bounded, and showing the numbers of metrics.jsonl and duet eval
    CHECK(html.size() < 3u * 1024u * 1024u);
    for (const char* fetch :
         {"src=\"http", "href=\"http", "url(http", "<link", "<script src", "@import"}) {
      CHECK(html.find(fetch) == std::string::npos);  // nothing loaded from elsewhere
    }
    CHECK(html.find("<img class=") != std::string::npos);  // thumbnails inline
    const auto shown = shown_metrics(html);
    // metrics.jsonl's last value of each evaluation metric.
    std::map<std::string, double> last;
    std::ifstream lines(run_dir + "/metrics.jsonl");
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json record = nlohmann::json::parse(line);  // outlives items()
      for (const auto& [k, v] : record.items()) {
        if (v.is_number()) {
          last[k] = v.get<double>();
        }
      }
    }
    const std::string checkpoint = run_dir + "/checkpoints/step-00000040";
    const auto evaluated =
        run_duet({"--log-level", "warn", "eval", "--checkpoint", checkpoint, "--json"});
    REQUIRE(evaluated.exit_code == 0);
    const auto eval_json = nlohmann::json::parse(evaluated.out);
    int compared = 0;
    for (const auto& [name, value] : eval_json.items()) {
      if (!value.is_number_float() || name.find("samples") != std::string::npos) {
        continue;
      }
      INFO(name);
      REQUIRE(shown.count(name) == 1);
      CHECK(shown.at(name) == last.at(name));
      CHECK(shown.at(name) == Approx(value.get<double>()).margin(1e-9));
      ++compared;
    }
    CHECK(compared >= 15);  // zero-shot, retrieval and the CLIP_benchmark set's metrics
    // Training scalars (the summary shows some) are not listed as evaluation metrics.
    const size_t table = html.find("<h3>Last evaluation</h3>");
    REQUIRE(table != std::string::npos);
    const auto evaluation = shown_metrics(html.substr(table, html.find("</table>", table) - table));
    CHECK(evaluation.size() >= 15);
    for (const auto& name : duet::train::training_metric_names()) {
      INFO(name);
      CHECK(evaluation.count(name) == 0);
    }

    // The same weights exported to transformers' layout, evaluated with the run's config.
    const std::string hf = dir / "hf";
    REQUIRE(run_duet({"--log-level", "warn", "export", "--checkpoint", checkpoint, "--format",
                      "hf", "--out", hf})
                .exit_code == 0);
    const auto from_export = run_duet({"--log-level", "warn", "eval", "-c", run_dir + "/config.yaml",
                                       "--checkpoint", hf, "--json"});
    INFO(from_export.err);
    REQUIRE(from_export.exit_code == 0);
    const auto export_json = nlohmann::json::parse(from_export.out);
    for (const auto& [name, value] : eval_json.items()) {
      if (value.is_number_float() && name.find("samples") == std::string::npos) {
        INFO(name);
        CHECK(export_json.at(name).get<double>() == Approx(value.get<double>()).margin(1e-6));
      }
    }
  }

  {  // Chromium renders it without errors, every section present, not blank
    const std::string chromium = find_chromium();
    if (chromium.empty()) {
      if (in_ci()) {
        FAIL("chromium is not installed (scripts/setup.sh installs it)");
      }
      std::cout << "WARN: skipped: chromium not found, the report's rendering is not checked\n";
      WARN("chromium not found: rendering not checked");
      return;
    }
    const std::string flags =
        " --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions "
        "--user-data-dir=" +
        shell_quote(dir / "chrome-profile") + " --enable-logging=stderr --v=0 ";
    const std::string url = "file://" + report;
    const int dom_status =
        run_shell(chromium + flags + "--dump-dom " + shell_quote(url) + " >" +
                  shell_quote(dir / "dom.html") + " 2>" + shell_quote(dir / "dom.err"));
    const std::string dom = read_file(dir / "dom.html");
    const std::string log = read_file(dir / "dom.err");
    INFO(log.substr(0, 4000));
    REQUIRE(dom_status == 0);
    CHECK(dom.find("data-rendered=\"") != std::string::npos);  // the inline script ran
    for (const char* id : {"summary", "training", "evaluation", "sets", "config"}) {
      CHECK(dom.find(fmt::format("<section id=\"{}\">", id)) != std::string::npos);
    }
    CHECK(dom.find("Confusion matrix") != std::string::npos);
    CHECK(dom.find("Most confused pairs") != std::string::npos);
    CHECK(dom.find("Text queries and their top-5 images") != std::string::npos);
    CHECK(log.find("Uncaught") == std::string::npos);
    CHECK(log.find(":CONSOLE") == std::string::npos);  // console messages are errors here

    const std::string shot = dir / "shot.png";
    REQUIRE(run_shell(chromium + flags + "--hide-scrollbars --window-size=1200,2400 --screenshot=" +
                      shell_quote(shot) + " " + shell_quote(url) + " >/dev/null 2>&1") == 0);
    const std::string png = read_file(shot);
    REQUIRE(!png.empty());
    const auto image =
        duet::data::decode_image(reinterpret_cast<const uint8_t*>(png.data()), png.size());
    CHECK(image.width == 1200);
    std::set<uint32_t> colours;
    size_t non_white = 0;
    for (size_t p = 0; p + 2 < image.pixels.size(); p += 3) {
      const uint32_t rgb = (uint32_t{image.pixels[p]} << 16) |
                           (uint32_t{image.pixels[p + 1]} << 8) | image.pixels[p + 2];
      colours.insert(rgb);
      non_white += rgb != 0xFFFFFF;
    }
    CHECK(colours.size() > 50);
    CHECK(non_white > image.pixels.size() / 3 / 20);  // over 5% of the page is drawn on
  }
}
