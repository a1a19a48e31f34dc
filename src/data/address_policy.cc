#include "data/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace lathe {
namespace {

using Addr = std::array<uint8_t, 16>;

// IPv4 a.b.c.d as ::ffff:a.b.c.d.
Addr Mapped(const uint8_t* v4) {
  Addr a{};
  a[10] = a[11] = 0xFF;
  std::memcpy(a.data() + 12, v4, 4);
  return a;
}

bool IsMapped(const Addr& a) {
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) return false;
  }
  return a[10] == 0xFF && a[11] == 0xFF;
}

// Why an IPv4 address is not a public unicast address, or nullptr.
const char* SpecialV4(const uint8_t* b) {
  if (b[0] == 0) return "a 'this network' address (0.0.0.0/8)";
  if (b[0] == 10) return "a private address (10.0.0.0/8)";
  if (b[0] == 100 && (b[1] & 0xC0) == 64) return "a carrier-grade NAT address (100.64.0.0/10)";
  if (b[0] == 127) return "a loopback address";
  if (b[0] == 169 && b[1] == 254) return "a link-local address (169.254.0.0/16, where cloud metadata services live)";
  if (b[0] == 172 && (b[1] & 0xF0) == 16) return "a private address (172.16.0.0/12)";
  if (b[0] == 192 && b[1] == 0 && b[2] == 0) return "an IETF protocol address (192.0.0.0/24)";
  if (b[0] == 192 && b[1] == 168) return "a private address (192.168.0.0/16)";
  if (b[0] == 198 && (b[1] & 0xFE) == 18) return "a benchmarking address (198.18.0.0/15)";
  if (b[0] >= 224) return "a multicast, reserved or broadcast address";
  return nullptr;
}

const char* SpecialV6(const Addr& a) {
  bool zero_to_14 = true;
  for (int i = 0; i < 15; ++i) zero_to_14 &= a[i] == 0;
  if (zero_to_14 && a[15] == 0) return "the unspecified address (::)";
  if (zero_to_14 && a[15] == 1) return "a loopback address";
  if (IsMapped(a)) return SpecialV4(a.data() + 12);
  // NAT64 (64:ff9b::/96) carries an IPv4 address: judge that one.
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(a.data(), kNat64, 12) == 0) return SpecialV4(a.data() + 12);
  if ((a[0] & 0xFE) == 0xFC) return "a private address (fc00::/7)";
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return "a link-local address (fe80::/10)";
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) return "a site-local address (fec0::/10)";
  if (a[0] == 0xFF) return "a multicast address";
  return nullptr;
}

bool ToAddr(const sockaddr* sa, Addr* out) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    uint8_t b[4];
    std::memcpy(b, &in->sin_addr, 4);
    *out = Mapped(b);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(out->data(), &in6->sin6_addr, 16);
    return true;
  }
  return false;
}

}  // namespace

AddressPolicy AddressPolicy::AllowAll() {
  AddressPolicy p;
  p.allow_all_ = true;
  return p;
}

Result<AddressPolicy> AddressPolicy::Parse(std::string_view spec) {
  AddressPolicy p;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  spec = trim(spec);
  if (spec.empty()) return p;
  if (spec == "any") return AllowAll();
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string item(trim(spec.substr(0, comma)));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("address range '" + item + "': " + why +
                                     " (expected CIDR ranges such as 10.0.0.0/8 or fd00::/8, or 'any')");
    };
    std::string host = item;
    int prefix = -1;
    size_t slash = item.find('/');
    if (slash != std::string::npos) {
      host = item.substr(0, slash);
      std::string bits = item.substr(slash + 1);
      if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) {
        return bad("the prefix length is not a number");
      }
      prefix = std::stoi(bits);
    }
    Range r;
    uint8_t v4[4];
    if (inet_pton(AF_INET, host.c_str(), v4) == 1) {
      if (prefix < 0) prefix = 32;
      if (prefix > 32) return bad("an IPv4 prefix is at most 32 bits");
      r.net = Mapped(v4);
      r.prefix = prefix + 96;
    } else if (inet_pton(AF_INET6, host.c_str(), r.net.data()) == 1) {
      if (prefix < 0) prefix = 128;
      if (prefix > 128) return bad("an IPv6 prefix is at most 128 bits");
      r.prefix = prefix;
    } else {
      return bad("not an IP address");
    }
    p.allowed_.push_back(r);
  }
  return p;
}

bool AddressPolicy::Match(const Range& r, const Addr& a) {
  int full = r.prefix / 8, rest = r.prefix % 8;
  if (std::memcmp(r.net.data(), a.data(), static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (r.net[static_cast<size_t>(full)] & mask) == (a[static_cast<size_t>(full)] & mask);
}

bool AddressPolicy::Allowed(const sockaddr* addr, std::string* why) const {
  if (allow_all_) return true;
  Addr a;
  if (!ToAddr(addr, &a)) {
    if (why != nullptr) *why = "not an IP address";
    return false;
  }
  for (const Range& r : allowed_) {
    if (Match(r, a)) return true;
  }
  const char* special = SpecialV6(a);
  if (special == nullptr) return true;
  if (why != nullptr) *why = special;
  return false;
}

std::string AddressPolicy::Format(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr == nullptr) return std::string();
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace lathe
