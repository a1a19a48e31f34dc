// The `lathe` binary: `lathe serve` runs the server; every other subcommand is a client of a server.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/serve.h"
#include "common/memory.h"

int main(int argc, char** argv) {
  lathe::TuneAllocator();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fprintf(stderr, "usage: lathe COMMAND [ARGS]; see 'lathe --help'\n");
    return 2;
  }
  // `lathe help COMMAND …` is answered by the client's per-command help.
  if (args[0] == "-h" || args[0] == "--help" || (args[0] == "help" && args.size() == 1)) {
    std::printf("lathe — a self-hosted ML platform in one binary\n\n"
                "  lathe serve [--help]     start the server\n\n");
    lathe::PrintClientUsage();
    return 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("lathe %s\n", LATHE_VERSION);
    return 0;
  }
  if (args[0] == "serve") return lathe::RunServe({args.begin() + 1, args.end()});
  return lathe::RunClient(args);
}
