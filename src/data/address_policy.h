// AddressPolicy: which network addresses a server-side fetch (the HTTP data source) may connect to.
//
// By default only public unicast addresses are allowed: loopback, private (RFC 1918, IPv6 ULA), link-local
// (which includes cloud metadata services such as 169.254.169.254), CGNAT, multicast, "this network",
// benchmarking, reserved and broadcast ranges are refused, for IPv4, IPv6 and IPv4-mapped IPv6 alike. An
// operator allows more with a list of CIDR ranges (`--http-source-allow 10.0.0.0/8,127.0.0.1/32`), or every
// address with "any". The check is made on the address a socket is about to connect to (after DNS, on every
// redirect), so DNS rebinding and redirects to internal hosts are caught too.
// Immutable after Parse: thread-safe.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lathe {

class AddressPolicy {
 public:
  // Public addresses only.
  AddressPolicy() = default;
  // "" = public only; "any" = everything; else comma-separated CIDRs ("10.0.0.0/8", "::1/128", "192.168.1.7").
  // kInvalidArgument naming the bad entry.
  static Result<AddressPolicy> Parse(std::string_view spec);
  static AddressPolicy AllowAll();

  // True if a connection to `addr` is allowed. *why gets a reason for a refusal ("a loopback address").
  bool Allowed(const sockaddr* addr, std::string* why) const;
  // The address as text ("127.0.0.1", "::1"); "" for other families.
  static std::string Format(const sockaddr* addr);

 private:
  struct Range {
    std::array<uint8_t, 16> net{};  // IPv4 as IPv4-mapped IPv6
    int prefix = 0;                 // bits of `net` that must match (IPv4 prefixes + 96)
  };
  static bool Match(const Range& r, const std::array<uint8_t, 16>& a);
  bool allow_all_ = false;
  std::vector<Range> allowed_;
};

}  // namespace lathe
