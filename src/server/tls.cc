#include "server/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lathe {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

std::string BioText(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

bool LooksLikeIp(const std::string& s) {
  return !s.empty() && (s.find(':') != std::string::npos || s.find_first_not_of("0123456789.") == std::string::npos);
}

Status WriteFileMode(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = ::write(fd, text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Status::Internal("cannot write " + tmp + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::Internal("cannot write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::Internal("cannot rename " + tmp + " to " + path);
  return Status::Ok();
}

}  // namespace

Result<SelfSigned> MakeSelfSignedCertificate(const std::vector<std::string>& names, int days) {
  if (names.empty()) return Status::InvalidArgument("a self-signed certificate needs at least one name");
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  if (!key) return Status::Internal("cannot generate an EC key");
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!cert) return Status::Internal("X509_new failed");
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Status::Internal("RAND_bytes failed");
  serial[0] &= 0x7F;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* sn = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (sn == nullptr) return Status::Internal("cannot set the serial number");
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("lathe"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(names[0].c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), subject);
  std::string san;
  for (const std::string& n : names) {
    if (!san.empty()) san += ",";
    san += (LooksLikeIp(n) ? "IP:" : "DNS:") + n;
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::pair<int, std::string> exts[] = {{NID_subject_alt_name, san},
                                              {NID_basic_constraints, "critical,CA:FALSE"},
                                              {NID_key_usage, "critical,digitalSignature"},
                                              {NID_ext_key_usage, "serverAuth"}};
  for (const auto& [nid, value] : exts) {
    std::unique_ptr<X509_EXTENSION, ExtFree> ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
      return Status::InvalidArgument("cannot make a certificate for the names '" + san + "'");
    }
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return Status::Internal("cannot sign the certificate");
  std::unique_ptr<BIO, BioFree> cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
  if (!cb || !kb || PEM_write_bio_X509(cb.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal("cannot encode the certificate as PEM");
  }
  return SelfSigned{BioText(cb.get()), BioText(kb.get())};
}

Result<TlsFiles> EnsureSelfSignedFiles(const std::string& dir, const std::vector<std::string>& names) {
  TlsFiles f{(std::filesystem::path(dir) / "self-signed.crt").string(),
             (std::filesystem::path(dir) / "self-signed.key").string()};
  std::error_code ec;
  if (std::filesystem::exists(f.cert_file, ec) && std::filesystem::exists(f.key_file, ec)) return f;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
  ASSIGN_OR_RETURN(SelfSigned s, MakeSelfSignedCertificate(names, 365));
  RETURN_IF_ERROR(WriteFileMode(f.key_file, s.key_pem, 0600));
  RETURN_IF_ERROR(WriteFileMode(f.cert_file, s.cert_pem, 0644));
  return f;
}

}  // namespace lathe
