// The run report page (see run_report.h): HTML written by hand, one function per section.
#include "train/run_report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/strings.h"
#include "eval/eval_details.h"
#include "eval/evaluate.h"
#include "train/metrics_jsonl.h"
#include "train/metrics_plot.h"
#include "train/svg_plot.h"

namespace duet::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kStyle = R"(
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
  color:#222;background:#fff}
h1{font-size:24px;margin-bottom:4px} h2{font-size:19px;margin-top:34px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin-top:22px} .muted{color:#777;font-size:13px}
table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 8px;border:1px solid #ddd;
  font-size:13px;text-align:right} th{background:#f4f4f4} td.name{text-align:left}
pre{background:#f7f7f7;padding:10px;font-size:12px;overflow:auto;max-height:420px}
.cm td{width:22px;height:22px;padding:0;text-align:center;font-size:10px;border:1px solid #fff}
.cm.small td{width:5px;height:5px;border:0}
.bar{display:inline-block;height:10px;background:#1f77b4;vertical-align:middle}
.thumbs img{width:56px;height:56px;image-rendering:pixelated;border:3px solid #ccc;margin:2px}
.thumbs img.ok{border-color:#2ca02c} .thumbs img.bad{border-color:#d62728}
.card{display:inline-block;vertical-align:top;margin:0 18px 12px 0}
.summary td{font-size:15px}
)";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A metric value: shown rounded, with the exact number in data-value.
std::string metric_cell(const std::string& name, double value) {
  const std::string shown = !std::isfinite(value)      ? std::string("n/a")
                            : eval::is_fraction_metric(name) ? fmt::format("{:.2f}%", 100.0 * value)
                                                       : fmt::format("{:.4g}", value);
  return fmt::format("<td data-metric=\"{}\" data-value=\"{}\">{}</td>", markup_escape(name),
                     std::isfinite(value) ? fmt::format("{:.17g}", value) : "nan", shown);
}

// An inline SVG chart (the XML declaration dropped: it is not allowed inside HTML).
std::string inline_svg(LinePlot plot) {
  plot.width = 960;
  plot.panel_height = 220;
  std::string svg = render_svg_line_plot(plot);
  if (svg.rfind("<?xml", 0) == 0) {
    svg.erase(0, svg.find('\n') + 1);
  }
  return "<div class=\"chart\">" + svg + "</div>\n";
}

bool has_metric(const std::vector<MetricsRecord>& records, const std::vector<std::string>& names) {
  for (const auto& r : records) {
    for (const auto& s : r.scalars) {
      if (std::find(names.begin(), names.end(), s.name) != names.end()) {
        return true;
      }
    }
  }
  return false;
}

// Metric names of the evaluation panels, in order of first appearance.
std::vector<std::string> eval_metric_names(const std::vector<MetricsRecord>& records) {
  const std::vector<std::string>& training = training_metric_names();
  std::vector<std::string> names;
  for (const auto& r : records) {
    for (const auto& s : r.scalars) {
      if (std::find(training.begin(), training.end(), s.name) == training.end() &&
          std::find(names.begin(), names.end(), s.name) == names.end()) {
        names.push_back(s.name);
      }
    }
  }
  return names;
}

// The newest value of each name, and the step it was logged at.
std::map<std::string, std::pair<int64_t, double>> latest_values(
    const std::vector<MetricsRecord>& records) {
  std::map<std::string, std::pair<int64_t, double>> latest;
  for (const auto& r : records) {
    for (const auto& s : r.scalars) {
      latest[s.name] = {r.step, s.value};
    }
  }
  return latest;
}

std::string summary_section(const std::string& run_dir, const std::vector<MetricsRecord>& records,
                            const json& details) {
  std::string html = "<table class=\"summary\">\n";
  const auto latest = latest_values(records);
  int64_t steps = 0;
  for (const auto& r : records) {
    steps = std::max(steps, r.step);
  }
  html += fmt::format("<tr><th>steps logged</th><td>{}</td></tr>\n", steps);
  for (const char* name : {"loss", "samples_per_second"}) {
    const auto it = latest.find(name);
    if (it != latest.end()) {
      html +=
          fmt::format("<tr><th>final {}</th>{}</tr>\n", name, metric_cell(name, it->second.second));
    }
  }
  if (!details.is_null()) {
    html += fmt::format("<tr><th>last evaluation</th><td>step {}</td></tr>\n",
                        details.value("step", int64_t{0}));
  }
  html += "</table>\n";
  html += fmt::format("<p class=\"muted\">run directory: {}</p>\n", markup_escape(run_dir));
  return html;
}

std::string config_section(const fs::path& run) {
  const fs::path config = run / "config.yaml";
  if (!fs::exists(config)) {
    return "<p class=\"muted\">no config.yaml in the run directory</p>\n";
  }
  return "<details open><summary>config.yaml (resolved)</summary><pre>" +
         markup_escape(read_text(config)) + "</pre></details>\n";
}

std::string training_section(const std::vector<MetricsRecord>& records) {
  if (records.empty()) {
    return "<p class=\"muted\">no metrics.jsonl yet</p>\n";
  }
  std::vector<MetricsPanelSpec> panels = {
      {"Training loss", "loss", {"loss"}},
      {"Learning rate", "lr", {"lr"}},
      {"Temperature t = exp(logit_scale)", "t", {"logit_scale"}},
      {"SigLIP logit bias", "bias", {"logit_bias"}}};
  std::string html = inline_svg(metrics_plot(records, "", panels));
  if (has_metric(records, {"samples_per_second", "step_time_ms"})) {
    html += "<h3>Throughput</h3>\n";
    html += inline_svg(metrics_plot(records, "",
                                    {{"Throughput", "samples/s", {"samples_per_second"}},
                                     {"Time per optimiser step: data wait vs compute",
                                      "ms",
                                      {"step_time_ms", "data_wait_ms", "compute_ms"}}}));
  }
  return html;
}

// The evaluated set a metric belongs to ("fashion-mnist/test" for a benchmark's
// NAME/SPLIT/METRIC, "" for eval.zero_shot and eval.retrieval) and its short name.
std::pair<std::string, std::string> split_metric(const std::string& name) {
  const size_t slash = name.rfind('/');
  if (slash == std::string::npos) {
    return {"", name};
  }
  return {name.substr(0, slash), name.substr(slash + 1)};
}

// Charted: the shares at 1 and 5 (accuracy, recall), not @10 or ranks (those are in the table).
bool charted(const std::string& metric) {
  if (!eval::is_fraction_metric(metric)) {
    return false;
  }
  const std::string tail = metric.substr(metric.size() >= 3 ? metric.size() - 3 : 0);
  return tail != "@10" && tail != "r10";
}

std::string evaluation_section(const std::vector<MetricsRecord>& records) {
  const std::vector<std::string> names = eval_metric_names(records);
  if (names.empty()) {
    return "<p class=\"muted\">no evaluation logged</p>\n";
  }
  // One panel per evaluated set, one series per charted metric, named by its short name.
  LinePlot plot;
  plot.x_label = "step";
  std::map<std::string, size_t> panel_of;
  for (const auto& name : names) {
    const auto [set, metric] = split_metric(name);
    if (!charted(metric)) {
      continue;
    }
    if (panel_of.count(set) == 0) {
      panel_of[set] = plot.panels.size();
      plot.panels.push_back({set.empty() ? "eval.zero_shot / eval.retrieval" : set, "share", {}});
    }
    PlotSeries series(metric, {}, {});
    for (const auto& r : records) {
      for (const auto& scalar : r.scalars) {
        if (scalar.name == name) {
          series.x.push_back(static_cast<double>(r.step));
          series.y.push_back(scalar.value);
        }
      }
    }
    plot.panels[panel_of[set]].series.push_back(std::move(series));
  }
  std::string html = plot.panels.empty() ? "" : inline_svg(plot);
  const auto latest = latest_values(records);
  html +=
      "<h3>Last evaluation</h3>\n<table class=\"metrics\"><tr><th>metric</th><th>value</th>"
      "<th>step</th></tr>\n";
  for (const auto& n : names) {
    const auto& [step, value] = latest.at(n);
    html += fmt::format("<tr><td class=\"name\">{}</td>{}<td>{}</td></tr>\n", markup_escape(n),
                        metric_cell(n, value), step);
  }
  return html + "</table>\n";
}

std::string thumbnail(const json& thumbnails, const std::string& key, const std::string& cls,
                      const std::string& tip) {
  const auto it = thumbnails.find(key);
  if (it == thumbnails.end()) {
    return fmt::format("<span class=\"muted\">{}</span> ", markup_escape(key));
  }
  return fmt::format("<img class=\"{}\" src=\"{}\" title=\"{}\" alt=\"{}\">", cls,
                     it->get<std::string>(), markup_escape(tip), markup_escape(key));
}

// Cell colour: white (0) to dark blue (1).
std::string shade(double v) {
  const int c = static_cast<int>(std::round(255.0 - 200.0 * std::clamp(v, 0.0, 1.0)));
  return fmt::format("#{:02x}{:02x}ff", c, c + (255 - c) / 3);
}

std::string confusion_matrix(const json& c) {
  const auto& names = c["classnames"];
  const auto classes = static_cast<int64_t>(names.size());
  const auto& confusion = c["confusion"];
  if (confusion.empty() || static_cast<int64_t>(confusion.size()) != classes * classes) {
    return fmt::format("<p class=\"muted\">{} classes: no confusion matrix (shown up to {})</p>\n",
                       classes, eval::kMaxConfusionClasses);
  }
  // Up to 20 classes: names, counts and a tooltip per cell; beyond, shades only, so that 100
  // classes stay a few hundred kB.
  const bool detailed = classes <= 20;
  std::string html = fmt::format(
      "<div class=\"card\"><b>Confusion matrix</b> <span class=\"muted\">(rows: true class{}, "
      "columns: predicted; shade: share of the row)</span>\n<table class=\"cm{}\">\n",
      detailed ? "" : " in class order, as in the per-class table", detailed ? "" : " small");
  for (int64_t t = 0; t < classes; ++t) {
    const double row_total = std::max<int64_t>(1, c["per_class_count"][t].get<int64_t>());
    html += detailed ? fmt::format("<tr><th class=\"name\">{}</th>",
                                   markup_escape(names[t].get<std::string>()))
                     : std::string("<tr>");
    for (int64_t p = 0; p < classes; ++p) {
      const int64_t n = confusion[t * classes + p].get<int64_t>();
      const double share = static_cast<double>(n) / row_total;
      if (!detailed) {
        html +=
            n == 0 ? "<td></td>" : fmt::format("<td style=\"background:{}\"></td>", shade(share));
        continue;
      }
      html += fmt::format(
          "<td style=\"background:{};color:{}\" title=\"{} as {}: {}\">{}</td>", shade(share),
          share > 0.5 ? "#fff" : "#333", markup_escape(names[t].get<std::string>()),
          markup_escape(names[p].get<std::string>()), n, n > 0 ? std::to_string(n) : "");
    }
    html += "</tr>\n";
  }
  return html + "</table></div>\n";
}

std::string per_class_accuracy(const json& c) {
  std::string html =
      "<div class=\"card\"><b>Per-class accuracy</b>\n<table><tr><th>class</th><th>samples</th>"
      "<th>accuracy</th><th></th></tr>\n";
  const auto& names = c["classnames"];
  for (size_t k = 0; k < names.size(); ++k) {
    const int64_t count = c["per_class_count"][k].get<int64_t>();
    if (count == 0) {
      continue;  // a class without samples in this set
    }
    const double acc = static_cast<double>(c["per_class_correct"][k].get<int64_t>()) / count;
    html += fmt::format(
        "<tr><td class=\"name\">{}</td><td>{}</td><td>{:.1f}%</td><td style=\"text-align:left\">"
        "<span class=\"bar\" style=\"width:{}px\"></span></td></tr>\n",
        markup_escape(names[k].get<std::string>()), count, 100.0 * acc,
        static_cast<int>(std::round(120.0 * acc)));
  }
  return html + "</table></div>\n";
}

std::string confused_pairs(const json& c, const json& thumbnails) {
  if (c["most_confused"].empty()) {
    return "<p>No confusions.</p>\n";
  }
  const auto& names = c["classnames"];
  std::string html =
      "<h4>Most confused pairs</h4>\n<table><tr><th>true class</th><th>predicted</th>"
      "<th>count</th><th>examples</th></tr>\n";
  for (const auto& p : c["most_confused"]) {
    const std::string truth = names[p["true"].get<size_t>()].get<std::string>();
    const std::string predicted = names[p["predicted"].get<size_t>()].get<std::string>();
    std::string images;
    for (const auto& k : p["keys"]) {
      images += thumbnail(thumbnails, k.get<std::string>(), "bad", k.get<std::string>());
    }
    html += fmt::format(
        "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{}</td>"
        "<td class=\"thumbs\" style=\"text-align:left\">{}</td></tr>\n",
        markup_escape(truth), markup_escape(predicted), p["count"].get<int64_t>(), images);
  }
  return html + "</table>\n";
}

std::string retrieval_details(const std::string& name, const json& r, const json& thumbnails) {
  std::string html = fmt::format(
      "<table><tr><th>median rank, text query &rarr; image</th>{}</tr><tr><th>median rank, "
      "image query &rarr; text</th>{}</tr></table>\n",
      metric_cell(name + "/text_to_image_median_rank", r["text_to_image_median_rank"]),
      metric_cell(name + "/image_to_text_median_rank", r["image_to_text_median_rank"]));
  html += "<h4>Text queries and their top-5 images</h4>\n<table>\n";
  for (const auto& q : r["queries"]) {
    std::string images;
    for (size_t i = 0; i < q["keys"].size(); ++i) {
      const bool ok = q["correct"][i].get<bool>();
      images += thumbnail(thumbnails, q["keys"][i].get<std::string>(), ok ? "ok" : "bad",
                          fmt::format("#{} score {:.3f}{}", i + 1, q["scores"][i].get<double>(),
                                      ok ? " (correct)" : ""));
    }
    html += fmt::format(
        "<tr><td class=\"name\">&ldquo;{}&rdquo;</td><td class=\"thumbs\" "
        "style=\"text-align:left\">{}</td></tr>\n",
        markup_escape(q["text"].get<std::string>()), images);
  }
  return html +
         "</table>\n<p class=\"muted\">green: a right answer, red: a wrong one, best first.</p>\n";
}

std::string sets_section(const json& details) {
  if (details.is_null()) {
    return "<p class=\"muted\">no evaluation details (RUN_DIR/eval/step-*.json)</p>\n";
  }
  std::string html;
  const json& thumbnails = details["thumbnails"];
  for (const auto& [name, section] : details["sections"].items()) {
    html += fmt::format("<h3 id=\"set-{}\">{}</h3>\n", markup_escape(name), markup_escape(name));
    if (section.contains("classification")) {
      const json& c = section["classification"];
      html += confusion_matrix(c) + per_class_accuracy(c) + confused_pairs(c, thumbnails);
    }
    if (section.contains("retrieval")) {
      html += retrieval_details(name, section["retrieval"], thumbnails);
    }
  }
  return html;
}

// "A to the left of B" -> the class named "B to the left of A", per class; -1 when none.
std::vector<int64_t> mirror_classes(const json& names) {
  static const std::string kLeftOf = " to the left of ";
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < names.size(); ++i) {
    index[names[i].get<std::string>()] = static_cast<int64_t>(i);
  }
  std::vector<int64_t> mirror(names.size(), -1);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string n = names[i].get<std::string>();
    const size_t at = n.find(kLeftOf);
    if (at == std::string::npos) {
      continue;
    }
    const std::string swapped = n.substr(at + kLeftOf.size()) + kLeftOf + n.substr(0, at);
    const auto it = index.find(swapped);
    if (it != index.end()) {
      mirror[i] = it->second;
    }
  }
  return mirror;
}

// Share of the samples predicted as their mirrored class; NaN when no class has a mirror.
double mirror_share(const json& c) {
  const std::vector<int64_t> mirror = mirror_classes(c["classnames"]);
  const auto classes = static_cast<int64_t>(mirror.size());
  const auto& confusion = c["confusion"];
  if (static_cast<int64_t>(confusion.size()) != classes * classes) {
    return std::nan("");
  }
  int64_t swapped = 0;
  int64_t total = 0;
  bool any = false;
  for (int64_t t = 0; t < classes; ++t) {
    total += c["per_class_count"][t].get<int64_t>();
    if (mirror[t] >= 0) {
      any = true;
      swapped += confusion[t * classes + mirror[t]].get<int64_t>();
    }
  }
  return any && total > 0 ? static_cast<double>(swapped) / total : std::nan("");
}

std::string seen_unseen_section(const json& details,
                                const std::map<std::string, std::pair<int64_t, double>>& latest) {
  if (details.is_null()) {
    return "";
  }
  std::string html;
  for (const auto& [name, section] : details["sections"].items()) {
    const size_t slash = name.rfind('/');
    if (slash == std::string::npos || name.substr(slash + 1) != "test") {
      continue;
    }
    const std::string base = name.substr(0, slash);
    const std::string heldout = base + "/heldout";
    if (!details["sections"].contains(heldout)) {
      continue;
    }
    html += fmt::format(
        "<h3>{}: seen combinations (test) vs unseen (heldout)</h3>\n<table><tr><th>metric</th>"
        "<th>seen: {}</th><th>unseen: {}</th></tr>\n",
        markup_escape(base), markup_escape(name), markup_escape(heldout));
    for (const auto& [metric, value] : latest) {
      if (metric.rfind(name + "/", 0) != 0 || metric.find("samples") != std::string::npos) {
        continue;
      }
      const std::string m = metric.substr(name.size() + 1);
      const auto other = latest.find(heldout + "/" + m);
      if (other == latest.end()) {
        continue;
      }
      html += fmt::format("<tr><td class=\"name\">{}</td>{}{}</tr>\n", markup_escape(m),
                          metric_cell(metric, value.second),
                          metric_cell(other->first, other->second.second));
    }
    if (section.contains("classification") &&
        details["sections"][heldout].contains("classification")) {
      const double seen = mirror_share(section["classification"]);
      const double unseen = mirror_share(details["sections"][heldout]["classification"]);
      if (std::isfinite(seen) || std::isfinite(unseen)) {
        html += fmt::format(
            "<tr><td class=\"name\">predicted as the mirrored pair (left and right "
            "swapped)</td>{}{}</tr>\n",
            metric_cell(name + "/mirror_share", seen),
            metric_cell(heldout + "/mirror_share", unseen));
      }
    }
    html +=
        "</table>\n<p class=\"muted\">Zero-shot ranks every class on both splits. Retrieval "
        "ranks within each split's own images and captions, so its rows compare across the "
        "splits only when both hold as many distinct captions.</p>\n";
  }
  return html;
}

}  // namespace

std::string render_run_report(const std::string& run_dir) {
  const fs::path run(run_dir);
  const fs::path metrics_path = run / "metrics.jsonl";
  DUET_CHECK(fs::is_directory(run) && (fs::exists(metrics_path) || fs::exists(run / "config.yaml")),
             "'{}' is not a run directory (no metrics.jsonl or config.yaml in it)", run_dir);
  const std::vector<MetricsRecord> records = fs::exists(metrics_path)
                                                 ? read_metrics_jsonl(metrics_path.string())
                                                 : std::vector<MetricsRecord>{};
  const json details = eval::load_latest_eval_details(run_dir);
  std::string name = fs::absolute(run).lexically_normal().filename().string();
  if (name.empty()) {
    name = fs::absolute(run).lexically_normal().parent_path().filename().string();
  }
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", std::localtime(&now));

  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n";
  html += fmt::format("<title>duet run report: {}</title>\n<style>{}</style></head>\n<body>\n",
                      markup_escape(name), kStyle);
  html += fmt::format("<h1>duet run report: {}</h1>\n<p class=\"muted\">written {}</p>\n",
                      markup_escape(name), when);
  html += "<section id=\"summary\"><h2>Summary</h2>\n" +
          summary_section(run_dir, records, details) + "</section>\n";
  html +=
      "<section id=\"training\"><h2>Training</h2>\n" + training_section(records) + "</section>\n";
  html += "<section id=\"evaluation\"><h2>Evaluation</h2>\n" + evaluation_section(records) +
          "</section>\n";
  const std::string compositional = seen_unseen_section(details, latest_values(records));
  if (!compositional.empty()) {
    html += "<section id=\"seen-unseen\"><h2>Seen vs unseen combinations</h2>\n" + compositional +
            "</section>\n";
  }
  html += "<section id=\"sets\"><h2>Evaluated sets</h2>\n" + sets_section(details) + "</section>\n";
  html += "<section id=\"config\"><h2>Config</h2>\n" + config_section(run) + "</section>\n";
  // Marks the page as rendered: the report test finds this attribute in the DOM.
  html +=
      "<script>document.body.setAttribute('data-rendered', String(document.querySelectorAll("
      "'section').length));</script>\n</body></html>\n";
  return html;
}

std::string write_run_report(const std::string& run_dir) {
  const std::string html = render_run_report(run_dir);
  const fs::path path = fs::path(run_dir) / "report.html";
  const fs::path tmp = fs::path(run_dir) / "report.html.tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << html;
    DUET_CHECK(out.good(), "cannot write '{}'", tmp.string());
  }
  fs::rename(tmp, path);
  return path.string();
}

}  // namespace duet::train
