// The `duet` binary: everything lives in duet::cli::run so tests can drive it in-process.
#include "cli/app.h"

int main(int argc, char** argv) { return duet::cli::run(argc, argv); }
