#include "cli/app.h"

#include <iostream>

#include <CLI/CLI.hpp>

#include "common/error.h"
#include "common/logging.h"
#include "common/torch_runtime.h"
#include "config/loader.h"
#include "distributed/communicator.h"
#include "duet/build_info.h"
#include "losses/implementation.h"

namespace duet::cli {

void Registry::add(CLI::App* command, std::function<void()> action) {
  actions_.emplace_back(command, std::move(action));
}

std::function<void()> Registry::selected() const {
  std::function<void()> chosen;
  size_t depth = 0;
  for (const auto& [command, action] : actions_) {
    if (!command->parsed()) {
      continue;
    }
    size_t d = 0;
    for (const CLI::App* p = command; p != nullptr; p = p->get_parent()) {
      ++d;
    }
    if (d > depth) {
      depth = d;
      chosen = action;
    }
  }
  return chosen;
}

namespace {

// What this build can do, each answer from the code that decides it (not from a build flag that
// only says a toolkit was found): whether the fused loss kernels exist, whether the NCCL
// communicator was compiled in.
std::string version_text() {
  return fmt::format("duet {} (LibTorch {}; fused CUDA loss kernels: {}; NCCL communicator: {})",
                     DUET_VERSION, DUET_TORCH_VERSION,
                     losses::fused_kernels_available() ? "yes" : "no",
                     distributed::nccl_available() ? "yes" : "no");
}

// Parses the command line and runs the selected command; run() maps what it throws to an exit
// code.
int parse_and_dispatch(int argc, char** argv) {
  CLI::App app{
      "duet: train joint image-text embedding models (CLIP, SigLIP) from YAML configs.\n"
      "Run `duet COMMAND --help` for a command's options.",
      "duet"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1);
  app.fallthrough();
  std::string log_level = "info";
  CLI::Option* log_level_option =
      app.add_option("--log-level", log_level,
                     "trace, debug, info, warn, error or off; when given, it wins over the "
                     "config's logging.level")
          ->capture_default_str();

  Registry registry;
  add_config_command(app, registry);
  add_tokenize_command(app, registry);
  add_model_command(app, registry);
  add_plot_command(app, registry);
  add_data_command(app, registry);
  add_train_command(app, registry);
  add_eval_command(app, registry);
  add_report_command(app, registry);
  add_export_command(app, registry);
  add_bench_command(app, registry);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help/version (code 0) or the error
    return code == 0 ? 0 : 2;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "error: while reading the command line: " << e.what() << "\n";
    return 2;
  } catch (...) {
    std::cerr << "error: while reading the command line: unknown exception\n";
    return 2;
  }

  log::init(log_level, 0, log_level_option->count() > 0);
  check_blas();
  auto action = registry.selected();
  if (!action) {
    std::cerr << app.help();
    return 2;
  }
  action();
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  // Every exception ends here, so nothing reaches std::terminate: duet::Error carries its exit
  // code, anything else is a runtime failure (1).
  try {
    return parse_and_dispatch(argc, argv);
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "error: unknown exception (not a std::exception)\n";
    return 1;
  }
}

config::Config load_config(const std::string& file, const std::vector<std::string>& overrides) {
  config::Config config = config::load(file, overrides);
  log::apply_config_level(config.logging.level);
  return config;
}

int run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  return run(static_cast<int>(copy.size()), argv.data());
}

}  // namespace duet::cli
