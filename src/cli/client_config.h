// Where the `lathe` client finds its server and credentials.
//
// The saved login lives in $XDG_CONFIG_HOME/lathe/credentials, else ~/.config/lathe/credentials, as JSON
// {"url","token"}. It is written atomically (temp file + fsync + rename) with mode 0600 in a directory
// created with mode 0700, and an existing file readable by group or others is tightened to 0600 on save.
// Functions read the environment they are given (not getenv) so tests can inject it; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/status.h"

namespace lathe::cli {

inline constexpr const char* kDefaultServerUrl = "http://127.0.0.1:8080";

struct Credentials {
  std::string url;
  std::string token;
};

// Looks up an environment variable; returns nullopt if unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

// The credentials path for this environment, or "" if neither XDG_CONFIG_HOME nor HOME is set.
std::string CredentialsPath(const EnvLookup& env);

// Reads the saved login. A missing file is nullopt (not an error); a malformed one is kInvalidArgument
// naming the path.
Result<std::optional<Credentials>> LoadCredentials(const std::string& path);
Status SaveCredentials(const std::string& path, const Credentials& creds);
// Removes the saved login; a missing file is fine.
Status RemoveCredentials(const std::string& path);

// "http://h:1/" and "http://h:1" are the same server.
std::string NormalizeUrl(std::string url);

struct Connection {
  std::string url;
  std::string token;
  std::string url_source;    // "--url", "LATHE_URL", "saved login", "default"
};

// url: flag, else LATHE_URL, else the saved login's url, else kDefaultServerUrl.
// token: flag, else LATHE_TOKEN, else the saved login's token — the saved token only when the resolved URL
// is the one it was issued for, so a token is never sent to a different server.
Connection ResolveConnection(const std::optional<std::string>& flag_url, const std::optional<std::string>& flag_token,
                             const EnvLookup& env, const std::optional<Credentials>& saved);

}  // namespace lathe::cli
