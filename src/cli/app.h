#pragma once
// The `duet` command: CLI11 parsing, logging set-up, dispatch to subcommands, and the mapping
// of failures to exit codes (0 success, 1 runtime failure, 2 bad usage or config).
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"

namespace CLI {
class App;
}
namespace duet::eval {
struct EvalResult;
}

namespace duet::cli {

// Subcommands register the action that runs when they are the one selected on the command line.
class Registry {
 public:
  void add(CLI::App* command, std::function<void()> action);
  // The action of the deepest parsed subcommand, or nullptr.
  std::function<void()> selected() const;

 private:
  std::vector<std::pair<CLI::App*, std::function<void()>>> actions_;
};

// Each file in src/cli/ adds one command (with its subcommands) to the root app.
void add_config_command(CLI::App& root, Registry& registry);
void add_tokenize_command(CLI::App& root, Registry& registry);
void add_model_command(CLI::App& root, Registry& registry);
void add_plot_command(CLI::App& root, Registry& registry);
void add_data_command(CLI::App& root, Registry& registry);
void add_bench_command(CLI::App& root, Registry& registry);
void add_train_command(CLI::App& root, Registry& registry);
void add_eval_command(CLI::App& root, Registry& registry);
void add_report_command(CLI::App& root, Registry& registry);
void add_export_command(CLI::App& root, Registry& registry);  // export, embed, retrieve

// The metrics of an evaluation as a two-column table on stdout (train and eval print it).
void print_eval_table(const eval::EvalResult& result);

// config::load, then the config's logging.level applies (unless --log-level was given).
// Commands load their config through this.
config::Config load_config(const std::string& file, const std::vector<std::string>& overrides);

// Runs `duet` with these arguments; returns the process exit code.
int run(int argc, char** argv);
int run(const std::vector<std::string>& args);

}  // namespace duet::cli
