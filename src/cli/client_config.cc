#include "cli/client_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/json.h"

namespace lathe::cli {

namespace {

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

Status MakeDirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : Status::FailedPrecondition(dir + " exists and is not a directory");
  }
  RETURN_IF_ERROR(MakeDirs(ParentDir(dir) == dir ? "" : ParentDir(dir), mode));
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return Status::Internal("cannot create " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string CredentialsPath(const EnvLookup& env) {
  auto xdg = env("XDG_CONFIG_HOME");
  if (xdg && !xdg->empty() && (*xdg)[0] == '/') return *xdg + "/lathe/credentials";
  auto home = env("HOME");
  if (home && !home->empty()) return *home + "/.config/lathe/credentials";
  return "";
}

Result<std::optional<Credentials>> LoadCredentials(const std::string& path) {
  if (path.empty()) return std::optional<Credentials>();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<Credentials>();
    return Status::PermissionDenied("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > (1u << 20)) return Status::InvalidArgument(path + " is too large to be a credentials file");
  }
  auto doc = ParseJson(text, 8);
  if (!doc.ok()) return Status::InvalidArgument(path + " is not valid JSON: " + doc.status().message() +
                                                " (run `lathe login` again)");
  if (!doc->is_object()) return Status::InvalidArgument(path + " must hold a JSON object (run `lathe login` again)");
  Credentials c;
  c.url = GetStringOr(*doc, "url", "");
  c.token = GetStringOr(*doc, "token", "");
  return std::optional<Credentials>(std::move(c));
}

Status SaveCredentials(const std::string& path, const Credentials& creds) {
  if (path.empty()) return Status::FailedPrecondition("cannot save the login: neither XDG_CONFIG_HOME nor HOME is set");
  const std::string dir = ParentDir(path);
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  const std::string text = DumpJson(Json{{"url", creds.url}, {"token", creds.token}}, 2) + "\n";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Internal("cannot write " + tmp + ": " + std::strerror(errno));
  // The umask may have cleared bits but never adds any; fchmod makes 0600 exact even on a reused file.
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t off = 0;
  while (ok && off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ok = false;
    else off += static_cast<size_t>(n);
  }
  if (ok && ::fsync(fd) != 0) ok = false;
  int saved_errno = errno;
  if (::close(fd) != 0) ok = false;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved_errno = errno;
    ::unlink(tmp.c_str());
    return Status::Internal("cannot write " + path + ": " + std::strerror(saved_errno));
  }
  return Status::Ok();
}

Status RemoveCredentials(const std::string& path) {
  if (path.empty()) return Status::Ok();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("cannot remove " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string NormalizeUrl(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

Connection ResolveConnection(const std::optional<std::string>& flag_url, const std::optional<std::string>& flag_token,
                             const EnvLookup& env, const std::optional<Credentials>& saved) {
  Connection c;
  auto env_url = env("LATHE_URL");
  if (flag_url) {
    c.url = *flag_url;
    c.url_source = "--url";
  } else if (env_url && !env_url->empty()) {
    c.url = *env_url;
    c.url_source = "LATHE_URL";
  } else if (saved && !saved->url.empty()) {
    c.url = saved->url;
    c.url_source = "saved login";
  } else {
    c.url = kDefaultServerUrl;
    c.url_source = "default";
  }
  c.url = NormalizeUrl(c.url);
  auto env_token = env("LATHE_TOKEN");
  if (flag_token) {
    c.token = *flag_token;
  } else if (env_token && !env_token->empty()) {
    c.token = *env_token;
  } else if (saved && NormalizeUrl(saved->url) == c.url) {
    c.token = saved->token;
  }
  return c;
}

}  // namespace lathe::cli
