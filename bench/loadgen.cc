// lathe_loadgen: an open-loop HTTP load generator — requests are sent on a fixed schedule (rate per second),
// not when the previous answer arrives, and each latency is measured from the request's scheduled time, so a
// stalled server shows up as latency instead of silently lowering the load (no coordinated omission). wrk
// (closed loop) measures maximum throughput; this measures latency at a given load. wrk2 is not in Debian.
//
//   lathe_loadgen --port P --path /api/... --body-file F [--header 'K: V']... --rate R --duration S
//                 [--connections C] [--host 127.0.0.1] [--method POST]
//
// One thread, epoll, keep-alive connections (default 64); a timerfd wakes it at the next scheduled send
// (rounded up to a 250 us tick, which the latencies include). A
// request due while every connection is busy waits for one (its latency includes the wait). Prints one JSON
// line: {"rate","duration_s","sent","completed","non2xx","errors","achieved_rps","p50_ms","p90_ms","p99_ms",
// "p999_ms","max_ms","second_max_ms"} (the worst latency of each scheduled second); errors counts requests without a complete answer. Exit status 0 unless the arguments are wrong or no connection could be made.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct Conn {
  int fd = -1;
  bool busy = false;
  int64_t scheduled_ns = 0;  // of the request in flight
  std::string in;
};

int Connect(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;  // a full socket buffer drains quickly on loopback
    } else {
      return false;
    }
  }
  return true;
}

// A complete response at the front of `in`: its status, and its length in bytes; 0 when incomplete.
size_t ResponseLength(const std::string& in, int* status) {
  const size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  *status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
  size_t length = 0;
  size_t pos = 0;
  while ((pos = in.find('\n', pos)) != std::string::npos && pos < head_end) {
    ++pos;
    if (strncasecmp(in.c_str() + pos, "content-length:", 15) == 0) length = std::strtoull(in.c_str() + pos + 15, nullptr, 10);
  }
  const size_t total = head_end + 4 + length;
  return in.size() >= total ? total : 0;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1);
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", path, body_file, method = "POST";
  std::vector<std::string> headers;
  int port = 0, connections = 64;
  double rate = 0, duration = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") host = v;
    else if (k == "--port") port = std::atoi(v.c_str());
    else if (k == "--path") path = v;
    else if (k == "--body-file") body_file = v;
    else if (k == "--header") headers.push_back(v);
    else if (k == "--rate") rate = std::atof(v.c_str());
    else if (k == "--duration") duration = std::atof(v.c_str());
    else if (k == "--connections") connections = std::atoi(v.c_str());
    else if (k == "--method") method = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (port <= 0 || path.empty() || rate <= 0 || duration <= 0 || connections < 1) {
    std::fprintf(stderr, "usage: lathe_loadgen --port P --path /x --rate R --duration S [--body-file F] "
                         "[--header 'K: V']... [--connections C]\n");
    return 2;
  }
  std::string body;
  if (!body_file.empty()) {
    std::ifstream in(body_file, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    body = ss.str();
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;

  const int ep = epoll_create1(0);
  const int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = UINT64_MAX;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
  std::vector<Conn> conns(static_cast<size_t>(connections));
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = Connect(host, port);
    if (conns[i].fd < 0) {
      std::fprintf(stderr, "cannot connect to %s:%d\n", host.c_str(), port);
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  std::vector<size_t> idle;
  for (size_t i = conns.size(); i-- > 0;) idle.push_back(i);

  const int64_t interval_ns = static_cast<int64_t>(1e9 / rate);
  const int64_t total = static_cast<int64_t>(rate * duration);
  const int64_t start = NowNs() + 1000000;  // first send in 1 ms
  int64_t next = 0;                         // index of the next request to schedule
  std::deque<int64_t> due;                  // scheduled times of requests waiting for a connection
  std::vector<double> latencies_ms;
  std::vector<double> second_max_ms(static_cast<size_t>(duration) + 1, 0.0);  // worst latency per scheduled second
  latencies_ms.reserve(static_cast<size_t>(total));
  int64_t sent = 0, non2xx = 0, errors = 0;
  const int64_t drain_until = start + static_cast<int64_t>(duration * 1e9) + 10'000'000'000LL;
  std::vector<char> buf(1 << 16);
  epoll_event events[256];

  auto in_flight = [&] { return static_cast<int64_t>(conns.size() - idle.size()); };
  while (next < total || !due.empty() || in_flight() > 0) {
    int64_t now = NowNs();
    if (now > drain_until) break;
    while (next < total && start + next * interval_ns <= now) due.push_back(start + (next++) * interval_ns);
    while (!due.empty() && !idle.empty()) {
      Conn& c = conns[idle.back()];
      idle.pop_back();
      c.busy = true;
      c.scheduled_ns = due.front();
      due.pop_front();
      ++sent;
      if (!SendAll(c.fd, request)) {
        ++errors;
        ::close(c.fd);
        c.fd = -1;  // this connection is gone; the rest carry on
      }
    }
    if (next < total) {
      // Wake at the next due time rounded up to a 250 us tick: at tens of thousands of requests per second one
      // wake sends several, so the generator's own syscalls stay small next to the server's work. The delay it
      // adds (under 250 us) is counted in the latencies, which run from the scheduled time.
      itimerspec its{};
      constexpr int64_t kTickNs = 250000;
      const int64_t at = (start + next * interval_ns + kTickNs - 1) / kTickNs * kTickNs;
      its.it_value.tv_sec = at / 1000000000LL;
      its.it_value.tv_nsec = at % 1000000000LL;
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
    }
    const int n = epoll_wait(ep, events, 256, 100);
    now = NowNs();
    for (int e = 0; e < n; ++e) {
      if (events[e].data.u64 == UINT64_MAX) {
        uint64_t expirations;
        (void)!::read(tfd, &expirations, sizeof(expirations));
        continue;
      }
      Conn& c = conns[events[e].data.u64];
      if (c.fd < 0) continue;
      for (;;) {
        ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          c.in.append(buf.data(), static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          if (c.busy) ++errors;
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          ::close(c.fd);
          c.fd = -1;
        }
        break;
      }
      int status = 0;
      size_t len = 0;
      while (c.busy && (len = ResponseLength(c.in, &status)) > 0) {
        const double ms = static_cast<double>(now - c.scheduled_ns) / 1e6;
        latencies_ms.push_back(ms);
        const auto sec = static_cast<size_t>(std::max<int64_t>(0, c.scheduled_ns - start) / 1000000000LL);
        if (sec < second_max_ms.size()) second_max_ms[sec] = std::max(second_max_ms[sec], ms);
        if (status < 200 || status > 299) ++non2xx;
        c.in.erase(0, len);
        c.busy = false;
        if (c.fd >= 0) idle.push_back(events[e].data.u64);
      }
    }
    // Connections that died while busy are lost; stop waiting for them.
    for (size_t i = 0; i < conns.size(); ++i) {
      if (conns[i].fd < 0 && conns[i].busy) conns[i].busy = false;
    }
    if (idle.empty() && in_flight() == 0) break;
    size_t alive = 0;
    for (const Conn& c : conns) alive += c.fd >= 0 ? 1 : 0;
    if (alive == 0) break;
  }
  const double elapsed = static_cast<double>(NowNs() - start) / 1e9;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto completed = static_cast<int64_t>(latencies_ms.size());
  std::string timeline;
  for (size_t i = 0; i < second_max_ms.size(); ++i) {
    char b[32];
    std::snprintf(b, sizeof(b), "%s%.1f", i ? "," : "", second_max_ms[i]);
    timeline += b;
  }
  // errors: requests without a complete answer (a connection failed, or the run ended before it came).
  std::printf("{\"rate\": %.1f, \"duration_s\": %.1f, \"sent\": %lld, \"completed\": %lld, \"non2xx\": %lld, "
              "\"errors\": %lld, \"achieved_rps\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
              "\"p999_ms\": %.3f, \"max_ms\": %.3f, \"second_max_ms\": [%s]}\n",
              rate, duration, static_cast<long long>(sent), static_cast<long long>(completed),
              static_cast<long long>(non2xx), static_cast<long long>(std::max(errors, total - completed)),
              static_cast<double>(completed) / elapsed, Percentile(latencies_ms, 0.50), Percentile(latencies_ms, 0.90),
              Percentile(latencies_ms, 0.99), Percentile(latencies_ms, 0.999),
              latencies_ms.empty() ? 0.0 : latencies_ms.back(), timeline.c_str());
  return 0;
}
