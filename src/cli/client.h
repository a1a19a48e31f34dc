// The client half of the `lathe` CLI: every subcommand except `serve` talks to a lathe server over HTTP
// (cli/http_client.h) and prints tables for people or the server's JSON for scripts (--json).
//
// Exit codes: 0 success, 1 the server or the network reported an error (or a job failed), 2 usage error.
// Results go to stdout, errors, progress and hints to stderr. Not reentrant (uses the process's stdio,
// environment and terminal); call from the main thread.
#pragma once

#include <string>
#include <vector>

namespace lathe {

// args excludes the program name: e.g. {"datasets","import","x.csv","--name","x"}. Returns the process exit code.
// Writes results to stdout, errors to stderr. 0 ok, 1 server/API error, 2 usage error.
int RunClient(const std::vector<std::string>& args);

// Top-level help listing every client command (written to stdout).
void PrintClientUsage();

}  // namespace lathe
