// TLS material for the HTTP server: a self-signed certificate for a quick start (`lathe serve --tls-self-signed`).
// The server loads certificate files itself (ServerOptions::tls). Thread safety: the functions are reentrant.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace lathe {

struct TlsFiles {
  std::string cert_file;  // PEM certificate chain, leaf first
  std::string key_file;   // PEM private key
};

// A self-signed certificate (ECDSA P-256, SHA-256, valid for `days` from now) for the given DNS names and IP
// addresses (subjectAltName; the first name is also the CN). PEM text of the certificate and of the key.
struct SelfSigned {
  std::string cert_pem;
  std::string key_pem;
};
Result<SelfSigned> MakeSelfSignedCertificate(const std::vector<std::string>& names, int days);

// Writes a self-signed certificate and key under dir (cert 0644, key 0600) unless both exist already; returns
// their paths. Used by `lathe serve --tls-self-signed`.
Result<TlsFiles> EnsureSelfSignedFiles(const std::string& dir, const std::vector<std::string>& names);

}  // namespace lathe
