// `duet config show` and `duet config reference`.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "config/loader.h"

namespace duet::cli {

void add_config_command(CLI::App& root, Registry& registry) {
  CLI::App* config = root.add_subcommand("config", "Inspect configurations");
  config->require_subcommand(1);

  struct ShowOptions {
    std::string file;
    std::vector<std::string> overrides;
  };
  auto show_options = std::make_shared<ShowOptions>();
  CLI::App* show = config->add_subcommand(
      "show",
      "Print the fully resolved config (includes followed, --set applied, defaults filled)");
  show->add_option("-c,--config", show_options->file, "Config file")->required();
  show->add_option("--set", show_options->overrides, "Override a key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  registry.add(show, [show_options] {
    std::cout << config::to_yaml(load_config(show_options->file, show_options->overrides));
  });

  CLI::App* reference =
      config->add_subcommand("reference", "Print the Markdown reference of every config key");
  registry.add(reference, [] { std::cout << config::reference_markdown(); });
}

}  // namespace duet::cli
