// The `lathe` data commands: datasets (import from files and sources, rows, profile, export, quarantine,
// delete, settings and contracts), recipes, connections and label queues. Each mirrors a route of the data
// API (src/api/routes_datasets.cc, data_settings.cc, data_sources.cc, routes_recipes.cc, routes_labels.cc),
// prints a table for people and the server's JSON with --json, and waits on jobs with a progress line.
//
// Secrets are never taken from the command line: a source password comes from stdin (--password-stdin) or
// $LATHE_SOURCE_PASSWORD. Not thread-safe (process stdio); called by RunClient on the main thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/client_context.h"

namespace lathe::cli {

// Every data command, grouped (datasets …, recipes …, connections …, labels …).
std::vector<Command> DataCommands();

// Streams GET `path` to `out` ("-" = stdout; a file is written to a temp name and renamed when complete, so a
// failed download leaves nothing behind) with a progress line labelled `label`. Returns the bytes written, or
// nullopt after printing why.
std::optional<uint64_t> DownloadTo(Context& ctx, const std::string& path, const std::string& out,
                                   const std::string& label);

}  // namespace lathe::cli
