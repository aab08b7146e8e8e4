#include "ctl/doctor_gather.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/config/config.h"
#include "common/config/config_file.h"
#include "common/drift_file.h"
#include "common/files.h"
#include "common/hostport.h"
#include "common/local_control.h"
#include "common/local_users.h"
#include "common/ntp/timestamp.h"
#include "common/port_owner.h"
#include "common/tls.h"
#include "ctl/printable.h"
#include "proto/ntpfleet.grpc.pb.h"

namespace ntpfleet::ctl {
namespace {

// "192.0.2.1" of "192.0.2.1:123".
std::string HostOf(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}

constexpr char kAgentComm[] = "ntpfleet-agent";

// /proc and /etc files, crontabs: at most 1 MiB; a FIFO is refused, never
// waited on (common/files).
std::optional<std::string> ReadSmallFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, size_t{1} << 20);
  if (!text.ok()) return std::nullopt;
  return *std::move(text);
}

bool IsDecimal(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// Every process: pid and comm, ascending by pid.
std::vector<ProcessFact> ListProcesses(const std::string& proc_root) {
  std::vector<ProcessFact> out;
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return out;
  while (const dirent* e = readdir(dir)) {
    int pid = 0;
    if (!IsDecimal(e->d_name) || !absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::optional<std::string> comm =
        ReadSmallFile(absl::StrCat(proc_root, "/", pid, "/comm"));
    if (!comm.has_value()) continue;
    if (!comm->empty() && comm->back() == '\n') comm->pop_back();
    out.push_back({pid, Printable(*comm)});
  }
  closedir(dir);
  std::sort(
      out.begin(), out.end(),
      [](const ProcessFact& a, const ProcessFact& b) { return a.pid < b.pid; });
  return out;
}

// --- the config --------------------------------------------------------------

// The text without its tls_cert/tls_key/tls_ca lines (to read the rest of a
// configuration whose only error is a partial TLS set).
std::string WithoutTlsLines(absl::string_view text) {
  std::vector<std::string> kept;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(t, "tls_cert") || absl::StartsWith(t, "tls_key") ||
        absl::StartsWith(t, "tls_ca")) {
      kept.push_back("");  // keep the line numbers
      continue;
    }
    kept.emplace_back(line);
  }
  return absl::StrJoin(kept, "\n");
}

// --- NTP queries -------------------------------------------------------------

struct Target {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // "127.0.0.1:123", "[::1]:123"
};

std::string AddrText(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return absl::StrCat(host, ":", port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  port = ntohs(in6->sin6_port);
  return absl::StrCat("[", host, "]:", port);
}

// The first address of host:port (numeric or a name), for UDP or TCP.
absl::StatusOr<std::vector<Target>> ResolveAll(const std::string& host,
                                               int port,
                                               config::AddressFamily family,
                                               int socktype) {
  addrinfo hints{};
  hints.ai_family = family == config::AddressFamily::kIpv4   ? AF_INET
                    : family == config::AddressFamily::kIpv6 ? AF_INET6
                                                             : AF_UNSPEC;
  hints.ai_socktype = socktype;
  addrinfo* res = nullptr;
  const std::string service = absl::StrCat(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        host, ": ", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc)));
  }
  std::vector<Target> out;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
    Target t;
    memcpy(&t.addr, a->ai_addr, a->ai_addrlen);
    t.len = a->ai_addrlen;
    t.text = AddrText(a->ai_addr);
    out.push_back(t);
  }
  freeaddrinfo(res);
  return out;
}

// The first of them (the one the agent uses too).
absl::StatusOr<Target> ResolveOne(const std::string& host, int port,
                                  config::AddressFamily family, int socktype) {
  absl::StatusOr<std::vector<Target>> all =
      ResolveAll(host, port, family, socktype);
  if (!all.ok()) return all.status();
  return all->front();
}

absl::Time RealNow() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return absl::TimeFromTimespec(ts);
}

struct PendingProbe {
  Target target;
  int fd = -1;
  absl::Time t1;
  ntp::NtpTimestamp sent;
  ProbeResult result;
  bool done = false;
};

// One mode-3 request to each target at once, from ephemeral ports; waits up to
// `timeout` for the answers (the first valid one each).
std::vector<ProbeResult> ProbeAll(const std::vector<absl::StatusOr<Target>>& in,
                                  absl::Duration timeout) {
  std::vector<PendingProbe> probes(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    PendingProbe& p = probes[i];
    if (!in[i].ok()) {
      p.result.outcome = ProbeOutcome::kUnresolved;
      p.result.error = std::string(in[i].status().message());
      p.done = true;
      continue;
    }
    p.target = *in[i];
    p.result.address = p.target.text;
    p.fd = socket(p.target.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p.fd < 0) {
      p.result.outcome = ProbeOutcome::kSendFailed;
      p.result.error = strerror(errno);
      p.done = true;
      continue;
    }
    ntp::NtpPacket request;
    request.version = 4;
    request.mode = ntp::Mode::kClient;
    p.t1 = RealNow();
    // The transmit timestamp is this machine's time, and the reply must echo
    // it as its origin (RFC 5905 §8).
    p.sent = ntp::NtpTimestamp::FromTime(p.t1);
    request.transmit = p.sent;
    absl::StatusOr<std::vector<uint8_t>> bytes = ntp::EncodePacket(request);
    if (!bytes.ok() || sendto(p.fd, bytes->data(), bytes->size(), 0,
                              reinterpret_cast<const sockaddr*>(&p.target.addr),
                              p.target.len) < 0) {
      p.result.outcome = ProbeOutcome::kSendFailed;
      p.result.error =
          bytes.ok() ? strerror(errno) : std::string(bytes.status().message());
      p.done = true;
    }
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < probes.size(); ++i) {
      if (probes[i].done) continue;
      fds.push_back({probes[i].fd, POLLIN, 0});
      which.push_back(i);
    }
    if (fds.empty()) break;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    const int n = poll(fds.data(), fds.size(),
                       static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) break;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (!(fds[k].revents & (POLLIN | POLLERR))) continue;
      PendingProbe& p = probes[which[k]];
      uint8_t buf[1024];
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      const ssize_t got =
          recvfrom(p.fd, buf, sizeof(buf), MSG_DONTWAIT,
                   reinterpret_cast<sockaddr*>(&from), &from_len);
      const absl::Time t4 = RealNow();
      if (got < 0) {
        // ICMP port unreachable on a loopback/connected path: nothing there.
        if (errno == ECONNREFUSED) {
          p.result.outcome = ProbeOutcome::kNoReply;
          p.done = true;
        }
        continue;
      }
      // Only the server asked, only a reply to this request.
      if (AddrText(reinterpret_cast<sockaddr*>(&from)) != p.target.text)
        continue;
      absl::StatusOr<ntp::NtpPacket> reply =
          ntp::DecodePacket(absl::MakeConstSpan(buf, static_cast<size_t>(got)));
      if (!reply.ok() || reply->mode != ntp::Mode::kServer ||
          reply->origin != p.sent) {
        continue;
      }
      const std::string address = p.result.address;
      p.result = ClassifyReply(*reply, p.t1, t4);
      p.result.address = address;
      p.done = true;
    }
  }
  std::vector<ProbeResult> out;
  for (PendingProbe& p : probes) {
    if (!p.done) {
      p.result.outcome = ProbeOutcome::kNoReply;
    }
    if (p.result.outcome == ProbeOutcome::kNoReply) p.result.timeout = timeout;
    if (p.fd >= 0) close(p.fd);
    out.push_back(p.result);
  }
  return out;
}

// --- /proc/net/udp: what addresses a port is bound to ------------------------

// The local IPv4 addresses (dotted) that sockets on `port` are bound to, from
// /proc/net/udp ("0100007F:007B": address in host-order hex as the kernel
// prints it for little-endian machines, i.e. the raw in_addr bytes).
std::vector<std::string> BoundIpv4(const std::string& proc_root, int port) {
  std::vector<std::string> out;
  std::optional<std::string> text = ReadSmallFile(proc_root + "/net/udp");
  if (!text.has_value()) return out;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> cols =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (cols.size() < 2) continue;
    std::vector<absl::string_view> ap = absl::StrSplit(cols[1], ':');
    if (ap.size() != 2 || ap[0].size() != 8) continue;
    uint32_t raw = 0;
    uint32_t p = 0;
    if (!absl::SimpleHexAtoi(ap[0], &raw) || !absl::SimpleHexAtoi(ap[1], &p))
      continue;
    if (static_cast<int>(p) != port) continue;
    // The kernel prints the in_addr's 32 bits with %08X on the host's order.
    in_addr a{};
    a.s_addr = raw;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    if (std::find(out.begin(), out.end(), buf) == out.end())
      out.emplace_back(buf);
  }
  return out;
}

// This node's IPv4 addresses other than loopback.
std::vector<std::string> LocalIpv4() {
  std::vector<std::string> out;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    if (std::find(out.begin(), out.end(), buf) == out.end())
      out.emplace_back(buf);
  }
  freeifaddrs(ifs);
  return out;
}

// --- the controller ----------------------------------------------------------

struct SslFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(SSL* s) const { SSL_free(s); }
  void operator()(X509* x) const { X509_free(x); }
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string OpensslErrors() {
  std::vector<std::string> out;
  while (const unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    out.push_back(r != nullptr ? r : absl::StrFormat("error %lx", e));
  }
  return absl::StrJoin(out, "; ");
}

std::string Asn1Time(const ASN1_TIME* t) {
  std::unique_ptr<BIO, SslFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// The DNS names and IP addresses in a certificate's subjectAltName.
std::string SubjectAltNames(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return "";
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type == GEN_DNS) {
      names.emplace_back(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
          ASN1_STRING_length(n->d.dNSName));
    } else if (n->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(n->d.iPAddress);
      const unsigned char* d = ASN1_STRING_get0_data(n->d.iPAddress);
      char buf[INET6_ADDRSTRLEN] = {0};
      if (len == 4) inet_ntop(AF_INET, d, buf, sizeof(buf));
      if (len == 16) inet_ntop(AF_INET6, d, buf, sizeof(buf));
      if (buf[0] != 0) names.emplace_back(buf);
    }
  }
  GENERAL_NAMES_free(sans);
  return absl::StrJoin(names, ", ");
}

// What the controller's certificate says, noted while OpenSSL verifies it (a
// handshake that fails verification leaves no peer certificate to ask).
struct PeerCertNotes {
  std::string names;  // its subjectAltNames
  std::string not_before;
  std::string not_after;
};

int NoteLeafCert(int preverify_ok, X509_STORE_CTX* store) {
  if (X509_STORE_CTX_get_error_depth(store) != 0) return preverify_ok;
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* notes = ssl != nullptr
                    ? static_cast<PeerCertNotes*>(SSL_get_app_data(ssl))
                    : nullptr;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  if (notes != nullptr && cert != nullptr && notes->names.empty()) {
    notes->names = SubjectAltNames(cert);
    notes->not_before = Asn1Time(X509_get0_notBefore(cert));
    notes->not_after = Asn1Time(X509_get0_notAfter(cert));
  }
  return preverify_ok;  // OpenSSL decides; this only takes notes
}

// A connected TCP socket to `t`, or an error worded for the report.
absl::StatusOr<int> ConnectTcp(const Target& t, absl::Duration timeout) {
  const int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) != 0) {
    if (errno != EINPROGRESS) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(
          err == ECONNREFUSED ? "connection refused: nothing listens there"
                              : strerror(err));
    }
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <=
        0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat(
          "no answer in ", absl::FormatDuration(timeout),
          " (a firewall dropping the connection, or the host is down)"));
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close(fd);
      return absl::UnavailableError(
          err == ECONNREFUSED ? "connection refused: nothing listens there"
                              : strerror(err));
    }
  }
  fcntl(fd, F_SETFL, flags);
  timeval tv{};
  tv.tv_sec = absl::ToInt64Seconds(timeout);
  tv.tv_usec = absl::ToInt64Microseconds(timeout) % 1000000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// HTTP/2's client connection preface and an empty SETTINGS frame (RFC 9113
// §3.4): a gRPC server answers with its own SETTINGS frame.
constexpr char kH2Preface[] =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
constexpr size_t kH2PrefaceSize = sizeof(kH2Preface) - 1;
constexpr uint8_t kH2Settings = 0x4;

void CheckControllerTls(const Target& target, const std::string& host,
                        const config::AgentConfig& cfg, absl::Duration timeout,
                        ControllerFacts* c) {
  // This node's own files first: readable, PEM, the key matching.
  const TlsFiles files{cfg.tls_cert, cfg.tls_key, cfg.tls_ca};
  if (absl::Status s =
          CheckTlsFiles(files, "agent.conf tls_cert/tls_key/tls_ca");
      !s.ok()) {
    c->outcome = ControllerOutcome::kBadTlsFiles;
    c->detail = std::string(s.message());
    return;
  }
  {
    std::unique_ptr<BIO, SslFree> bio(BIO_new_file(cfg.tls_cert.c_str(), "r"));
    std::unique_ptr<X509, SslFree> own(
        bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)
            : nullptr);
    if (own && X509_cmp_current_time(X509_get0_notAfter(own.get())) < 0) {
      c->outcome = ControllerOutcome::kBadTlsFiles;
      c->detail =
          absl::StrCat("this node's certificate ", cfg.tls_cert, " expired on ",
                       Asn1Time(X509_get0_notAfter(own.get())));
      return;
    }
    if (own && X509_cmp_current_time(X509_get0_notBefore(own.get())) > 0) {
      c->outcome = ControllerOutcome::kBadTlsFiles;
      c->detail = absl::StrCat("this node's certificate ", cfg.tls_cert,
                               " is valid only from ",
                               Asn1Time(X509_get0_notBefore(own.get())),
                               " (is this node's clock far behind?)");
      return;
    }
  }
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, SslFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx ||
      SSL_CTX_use_certificate_chain_file(ctx.get(), cfg.tls_cert.c_str()) !=
          1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), cfg.tls_key.c_str(),
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx.get(), cfg.tls_ca.c_str(), nullptr) !=
          1) {
    c->outcome = ControllerOutcome::kBadTlsFiles;
    c->detail = OpensslErrors();
    return;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, NoteLeafCert);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));

  absl::StatusOr<int> fd = ConnectTcp(target, timeout);
  if (!fd.ok()) {
    c->outcome = ControllerOutcome::kUnreachable;
    c->detail = absl::StrCat(target.text, ": ", fd.status().message());
    return;
  }
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), *fd);
  PeerCertNotes notes;
  SSL_set_app_data(ssl.get(), &notes);
  // The name the agent dials must be in the controller's certificate, as gRPC
  // checks it.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  in6_addr ip{};
  const bool is_ip = inet_pton(AF_INET, host.c_str(), &ip) == 1 ||
                     inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  const int rc = SSL_connect(ssl.get());
  if (rc != 1) {
    const long verify = SSL_get_verify_result(ssl.get());
    const int ssl_error = SSL_get_error(ssl.get(), rc);
    const std::string errors = OpensslErrors();
    c->outcome = ControllerOutcome::kTlsFailed;
    if (verify != X509_V_OK) {
      c->detail = X509_verify_cert_error_string(verify);
      switch (verify) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
          c->tls_failure = TlsFailure::kPeerCertExpired;
          if (!notes.not_after.empty()) {
            absl::StrAppend(&c->detail,
                            ": the controller's certificate is valid from ",
                            notes.not_before, " to ", notes.not_after);
          }
          break;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
          c->tls_failure = TlsFailure::kNameMismatch;
          absl::StrAppend(&c->detail, ": dialled ", host);
          if (!notes.names.empty()) {
            absl::StrAppend(&c->detail, ", the certificate is for ",
                            notes.names);
          }
          break;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
          c->tls_failure = TlsFailure::kWrongCa;
          absl::StrAppend(&c->detail,
                          ": the controller's certificate is not "
                          "signed by ",
                          cfg.tls_ca, " (wrong CA)");
          break;
        default:
          break;
      }
    } else if (absl::StrContains(errors, "wrong version number") ||
               absl::StrContains(errors, "packet length too long") ||
               absl::StrContains(errors, "unexpected eof") ||
               ssl_error == SSL_ERROR_SYSCALL) {
      c->outcome = ControllerOutcome::kProtocolMismatch;
      c->detail = absl::StrCat(
          "it does not speak TLS (",
          errors.empty() ? "the connection was closed" : errors,
          "): the controller runs in plain text (no --tls-cert), but this "
          "node is configured for TLS");
    } else if (absl::StrContains(errors, "alert")) {
      c->tls_failure = TlsFailure::kClientCertRefused;
      c->detail = absl::StrCat(
          "the controller refused this node's "
          "certificate (",
          errors, ")");
    } else {
      c->detail = errors.empty() ? "the connection failed" : errors;
    }
    close(*fd);
    return;
  }
  // TLS 1.3: the controller checks this node's certificate after the client
  // has finished; a refusal arrives as an alert on the first read.
  std::string peer_names;
  if (std::unique_ptr<X509, SslFree> peer(SSL_get1_peer_certificate(ssl.get()));
      peer) {
    peer_names = absl::StrCat("its certificate (", SubjectAltNames(peer.get()),
                              ") valid until ",
                              Asn1Time(X509_get0_notAfter(peer.get())));
  }
  SSL_write(ssl.get(), kH2Preface, static_cast<int>(kH2PrefaceSize));
  uint8_t frame[9];
  const int got = SSL_read(ssl.get(), frame, sizeof(frame));
  const std::string errors = OpensslErrors();
  close(*fd);
  if (got >= 4 && frame[3] == kH2Settings) {
    c->outcome = ControllerOutcome::kOk;
    c->detail = peer_names;
    return;
  }
  if (absl::StrContains(errors, "alert")) {
    c->outcome = ControllerOutcome::kTlsFailed;
    c->tls_failure = TlsFailure::kClientCertRefused;
    c->detail = absl::StrCat("the controller refused this node's certificate (",
                             errors, ")");
    return;
  }
  c->outcome = ControllerOutcome::kTlsFailed;
  c->detail = absl::StrCat(
      "the handshake passed but the controller then closed the connection",
      errors.empty() ? "" : absl::StrCat(" (", errors, ")"),
      ": it may have refused this node's certificate");
  c->tls_failure = TlsFailure::kClientCertRefused;
}

void CheckControllerPlain(const Target& target, absl::Duration timeout,
                          ControllerFacts* c) {
  absl::StatusOr<int> fd = ConnectTcp(target, timeout);
  if (!fd.ok()) {
    c->outcome = ControllerOutcome::kUnreachable;
    c->detail = absl::StrCat(target.text, ": ", fd.status().message());
    return;
  }
  (void)send(*fd, kH2Preface, kH2PrefaceSize, MSG_NOSIGNAL);
  uint8_t frame[9];
  const ssize_t got = recv(*fd, frame, sizeof(frame), 0);
  close(*fd);
  if (got >= 4 && frame[3] == kH2Settings) {
    c->outcome = ControllerOutcome::kOk;
    return;
  }
  c->outcome = ControllerOutcome::kProtocolMismatch;
  c->detail =
      got > 0 && frame[0] == 0x15
          ? "it answered plain text with a TLS alert: the controller requires "
            "TLS, and this node has no tls_cert/tls_key/tls_ca"
          : "it closed the plain-text connection without a word: the "
            "controller probably requires TLS (or is not an "
            "ntpfleet-controller), and this node has no "
            "tls_cert/tls_key/tls_ca";
}

void GatherController(const config::AgentConfig& cfg,
                      const std::string& half_tls_error, absl::Duration timeout,
                      ControllerFacts* c) {
  // With several `controller` lines, the first is checked (doctor has one
  // controller line in its report).
  const std::string controller =
      cfg.controllers.empty() ? "" : cfg.controllers.front();
  c->address = controller;
  if (!half_tls_error.empty()) {
    c->outcome = ControllerOutcome::kHalfTls;
    c->detail = half_tls_error;
    return;
  }
  if (controller.empty()) {
    c->outcome = ControllerOutcome::kNotConfigured;
    return;
  }
  c->tls = !cfg.tls_cert.empty();
  absl::StatusOr<HostPort> at = ParseHostPort(controller, "controller");
  if (!at.ok()) {
    c->outcome = ControllerOutcome::kBadAddress;
    c->detail = std::string(at.status().message());
    return;
  }
  absl::StatusOr<std::vector<Target>> targets =
      ResolveAll(at->host, at->port, config::AddressFamily::kAny, SOCK_STREAM);
  if (!targets.ok()) {
    c->outcome = ControllerOutcome::kBadAddress;
    c->detail = absl::StrCat("cannot resolve ", targets.status().message());
    return;
  }
  // As gRPC does: each address in turn ("localhost" may be ::1 first while
  // the controller listens on 127.0.0.1); the first that is not unreachable
  // decides.
  std::vector<std::string> unreachable;
  for (const Target& t : *targets) {
    if (c->tls) {
      CheckControllerTls(t, at->host, cfg, timeout, c);
    } else {
      CheckControllerPlain(t, timeout, c);
    }
    if (c->outcome != ControllerOutcome::kUnreachable) return;
    unreachable.push_back(c->detail);
  }
  c->detail = absl::StrJoin(unreachable, "; ");
}

// Signs, from the controller, that the upstreams doctor got no reply from
// answer other nodes. Sets f->firewall.evidence_error when it cannot ask.
void GatherServingEvidence(const config::AgentConfig& cfg,
                           const GatherOptions& o, DoctorFacts* f) {
  std::vector<UpstreamFacts*> silent;
  for (UpstreamFacts& u : f->upstreams)
    if (u.probe.outcome == ProbeOutcome::kNoReply) silent.push_back(&u);
  if (silent.empty()) return;
  if (cfg.controllers.empty()) {
    f->firewall.evidence_error = "no controller to ask which nodes it answers";
    return;
  }
  if (f->controller.outcome != ControllerOutcome::kOk) {
    f->firewall.evidence_error =
        "the controller could not be asked (see the controller line)";
    return;
  }
  TlsFiles tls{o.tls_cert, o.tls_key, o.tls_ca};
  if (tls.empty()) tls = TlsFiles{cfg.tls_cert, cfg.tls_key, cfg.tls_ca};
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> c =
        ClientCredentials(tls, "--tls-cert/--tls-key/--tls-ca");
    if (!c.ok()) {
      f->firewall.evidence_error = std::string(c.status().message());
      return;
    }
    creds = *std::move(c);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  auto stub = v1::FleetService::NewStub(
      grpc::CreateCustomChannel(cfg.controllers.front(), creds, args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(
                       absl::ToInt64Milliseconds(o.connect_timeout) + 2000));
  v1::GetFleetRequest req;
  v1::Fleet fleet;
  if (grpc::Status s = stub->GetFleet(&ctx, req, &fleet); !s.ok()) {
    f->firewall.evidence_error = absl::StrCat(
        "the controller did not list the fleet: ", s.error_message(),
        s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                s.error_code() == grpc::StatusCode::UNAUTHENTICATED
            ? " (pass a viewer's --tls-cert/--tls-key/--tls-ca)"
            : "");
    return;
  }
  const std::string self =
      f->agent.status.has_value() ? f->agent.status->node().node_name() : "";
  for (UpstreamFacts* u : silent) {
    // "127.0.0.1:123" -> "127.0.0.1"; "[::1]:123" -> "::1".
    std::string ip = u->probe.address.substr(0, u->probe.address.rfind(':'));
    ip = std::string(absl::StripSuffix(absl::StripPrefix(ip, "["), "]"));
    const std::string addr = u->probe.address;
    for (const v1::Node& n : fleet.nodes()) {
      if (n.name() == self || u->serving_evidence.size() >= 4) continue;
      const v1::SyncState st = n.status().state();
      const bool serving =
          st == v1::SYNC_STATE_SYNCHRONISED || st == v1::SYNC_STATE_LOCAL_CLOCK;
      const auto& addrs = n.hello().addresses();
      const bool is_it =
          n.name() == u->name ||
          std::find(addrs.begin(), addrs.end(), ip) != addrs.end();
      if (is_it && serving &&
          n.connection() == v1::CONNECTION_STATE_CONNECTED) {
        u->serving_evidence.push_back(absl::StrFormat(
            "the controller shows node %s synchronised at stratum %d", n.name(),
            n.status().stratum()));
        continue;
      }
      for (const v1::PeerStatus& p : n.status().peers()) {
        if (p.address() == addr && p.reach() != 0) {
          u->serving_evidence.push_back(absl::StrFormat(
              "node %s gets replies from it (reach %o)", n.name(), p.reach()));
          break;
        }
      }
    }
  }
}

// --- the drift file ----------------------------------------------------------

void GatherDrift(const config::AgentConfig& cfg, const AgentFacts& agent,
                 DriftFacts* d) {
  d->path = cfg.driftfile;
  if (d->path.empty()) return;
  // Whose access counts: the running agent's user, else the packaged one's.
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name = "root";
  // /etc/passwd and /etc/group directly (common/local_users: no NSS in the
  // static ntpfleetctl).
  const LocalUsers users = LocalUsers::Read();
  std::optional<LocalUser> pw;
  if (agent.uid.has_value()) {
    uid = *agent.uid;
    pw = users.UserById(uid);
  } else {
    pw = users.UserByName("ntpfleet");
    if (pw.has_value()) uid = pw->uid;
  }
  if (pw.has_value()) {
    name = pw->name;
    gid = pw->gid;
  } else if (uid != 0) {
    name = absl::StrCat("uid ", uid);
  }
  d->user = uid == 0 ? name : absl::StrFormat("%s (uid %d)", name, uid);
  std::vector<gid_t> groups{gid};
  if (pw.has_value()) groups = users.GroupsOf(*pw);
  const size_t slash = d->path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : d->path.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    d->dir_exists = false;
    d->dir_error = errno == ENOENT ? "" : strerror(errno);
    return;
  }
  d->dir_exists = true;
  struct statvfs vfs {};
  if (statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
    d->dir_writable = false;
    d->dir_error = "read-only file system";
  } else if (uid == 0) {
    d->dir_writable = true;
  } else {
    mode_t need = 0;
    if (st.st_uid == uid) {
      need = S_IWUSR | S_IXUSR;
    } else if (std::find(groups.begin(), groups.end(), st.st_gid) !=
               groups.end()) {
      need = S_IWGRP | S_IXGRP;
    } else {
      need = S_IWOTH | S_IXOTH;
    }
    d->dir_writable = (st.st_mode & need) == need;
    if (!d->dir_writable) {
      const std::optional<LocalUser> owner = users.UserById(st.st_uid);
      const std::optional<std::string> grp = users.GroupName(st.st_gid);
      d->dir_error =
          absl::StrFormat("mode %04o, owner %s, group %s", st.st_mode & 07777,
                          owner ? owner->name : absl::StrCat(st.st_uid),
                          grp ? *grp : absl::StrCat(st.st_gid));
    }
  }
  d->outside_unit_state_dir = name == "ntpfleet" &&
                              dir != "/var/lib/ntpfleet" &&
                              !absl::StartsWith(dir, "/var/lib/ntpfleet/");
  absl::StatusOr<double> ppm = clock::ReadDriftFile(d->path);
  if (ppm.ok()) {
    d->file = DriftFileState::kValid;
    d->ppm = *ppm;
  } else if (absl::IsNotFound(ppm.status())) {
    d->file = DriftFileState::kMissing;
  } else if (absl::IsInvalidArgument(ppm.status())) {
    d->file = DriftFileState::kInvalid;
    d->file_error = std::string(ppm.status().message());
  } else {
    d->file = DriftFileState::kUnreadable;
    d->file_error = std::string(ppm.status().message());
  }
}

// --- the kernel clock --------------------------------------------------------

void GatherKernel(KernelClockFacts* k) {
  // READ ONLY: modes = 0 asks for the state and changes nothing (adjtimex(2)).
  // Never set a mode bit here: this must not move any machine's clock.
  struct timex tx {};
  tx.modes = 0;
  const int state = ntp_adjtime(&tx);
  if (state < 0) {
    k->read = false;
    k->error = strerror(errno);
    return;
  }
  k->read = true;
  k->state = state;
  k->status = tx.status;
  k->maxerror_us = tx.maxerror;
  k->esterror_us = tx.esterror;
  // timex.freq: ppm with a 16-bit binary fraction (adjtimex(2)).
  k->frequency_ppm = static_cast<double>(tx.freq) / 65536.0;
}

// --- time daemons ------------------------------------------------------------

// Process names of other NTP daemons (/proc/PID/comm is cut to 15 bytes).
bool IsTimeDaemon(const std::string& comm) {
  return comm == "ntpd" || comm == "chronyd" || comm == "openntpd" ||
         comm == "systemd-timesyn" || comm == "xntpd";
}

constexpr const char* kDaemonUnits[] = {
    "ntpd",   "ntp",      "ntpsec",           "chronyd",
    "chrony", "openntpd", "systemd-timesyncd"};

std::vector<std::string> EnabledBySystemctl() {
  std::vector<std::string> out;
  std::set<std::string> seen_files;
  for (const char* unit : kDaemonUnits) {
    // `is-enabled` prints the state; "enabled" and "enabled-runtime" start the
    // unit at boot. An alias (chrony -> chronyd) is reported once.
    const std::string cmd =
        // timeout(1): a wedged systemd must not hang doctor.
        absl::StrCat("timeout 5 systemctl is-enabled ", unit,
                     ".service 2>/dev/null");
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) continue;
    char buf[128] = {0};
    const bool got = fgets(buf, sizeof(buf), p) != nullptr;
    pclose(p);
    if (!got) continue;
    const std::string state(absl::StripAsciiWhitespace(buf));
    if (state != "enabled" && state != "enabled-runtime") continue;
    // Debian's chrony.service is also reachable as chronyd.service, ntp as
    // ntpd: report the unit's real file once.
    const std::string show =
        absl::StrCat("timeout 5 systemctl show -p FragmentPath --value ", unit,
                     ".service 2>/dev/null");
    std::string fragment;
    if (FILE* q = popen(show.c_str(), "r")) {
      char b[512] = {0};
      if (fgets(b, sizeof(b), q) != nullptr)
        fragment = std::string(absl::StripAsciiWhitespace(b));
      pclose(q);
    }
    if (!fragment.empty() && !seen_files.insert(fragment).second) continue;
    out.push_back(
        absl::StrCat(unit, ".service (systemctl is-enabled: ", state, ")"));
  }
  return out;
}

std::vector<std::string> CronLinesIn(const GatherOptions& o) {
  std::vector<std::string> files = {o.etc_root + "/crontab"};
  for (const std::string& dir :
       {o.etc_root + "/cron.d", o.etc_root + "/cron.hourly",
        o.etc_root + "/cron.daily", o.spool_root, o.spool_root + "/crontabs"}) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      files.push_back(absl::StrCat(dir, "/", e->d_name));
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (const std::string& f : files) {
    struct stat st {};
    if (stat(f.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (1 << 20)) {
      continue;
    }
    std::optional<std::string> text = ReadSmallFile(f);
    if (!text.has_value()) continue;
    for (std::string& l : CronTimeLines(*text, f)) out.push_back(std::move(l));
  }
  return out;
}

// --- the agent ---------------------------------------------------------------

// The agent: its control socket's answer; without one, the ntpfleet-agent
// holding `port` (not any ntpfleet-agent on the machine: a test host may run
// many, and a node runs one, on its port).
void GatherAgent(const GatherOptions& o, int port, AgentFacts* a) {
  a->socket = o.control_socket;
  v1::LocalRequest request;
  request.mutable_status();
  absl::StatusOr<v1::LocalResponse> r =
      local_control::CallAgent(o.control_socket, request, absl::Seconds(3));
  if (r.ok()) {
    a->running = true;
    a->status = r->status();
    a->pid = static_cast<int>(r->status().pid());
  } else {
    a->socket_error = std::string(r.status().message());
  }
  if (a->pid == 0) {
    std::optional<net::PortOwner> owner =
        net::FindUdpPortOwner(static_cast<uint16_t>(port), o.proc_root);
    if (owner.has_value() && owner->command == kAgentComm) {
      a->running = true;
      a->pid = owner->pid;
    }
  }
  if (a->pid == 0) return;
  if (std::optional<std::string> st =
          ReadSmallFile(absl::StrCat(o.proc_root, "/", a->pid, "/status"))) {
    a->cap_eff = ParseCapEff(*st);
    a->uid = ParseEffectiveUid(*st);
  }
}

}  // namespace

std::optional<uint64_t> ParseCapEff(absl::string_view proc_status) {
  for (absl::string_view line : absl::StrSplit(proc_status, '\n')) {
    if (!absl::ConsumePrefix(&line, "CapEff:")) continue;
    uint64_t v = 0;
    if (absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line), &v)) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<uint32_t> ParseEffectiveUid(absl::string_view proc_status) {
  for (absl::string_view line : absl::StrSplit(proc_status, '\n')) {
    if (!absl::ConsumePrefix(&line, "Uid:")) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint32_t uid = 0;
    if (f.size() >= 2 && absl::SimpleAtoi(f[1], &uid)) return uid;
    return std::nullopt;
  }
  return std::nullopt;
}

std::vector<std::string> CronTimeLines(absl::string_view text,
                                       absl::string_view file) {
  std::vector<std::string> out;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    const absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty() || t[0] == '#') continue;
    // Words split on blanks, slashes and shell punctuation: /usr/sbin/ntpdate,
    // `ntpdate -u`, "&& ntpdate" all match; "ntpdate-debian" does not.
    for (absl::string_view w : absl::StrSplit(
             t, absl::ByAnyChar(" \t/;&|()`'\"$"), absl::SkipEmpty())) {
      if (w == "ntpdate" || w == "chronyc" || w == "sntp") {
        out.push_back(absl::StrCat(file, ":", n, ": ", t));
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> EnabledInEtc(const std::string& etc_root) {
  std::vector<std::string> out;
  const std::string systemd = etc_root + "/systemd/system";
  if (DIR* d = opendir(systemd.c_str())) {
    std::vector<std::string> wants;
    while (const dirent* e = readdir(d)) {
      if (absl::EndsWith(e->d_name, ".wants"))
        wants.push_back(absl::StrCat(systemd, "/", e->d_name));
    }
    closedir(d);
    std::sort(wants.begin(), wants.end());
    for (const std::string& w : wants) {
      for (const char* unit : kDaemonUnits) {
        const std::string path = absl::StrCat(w, "/", unit, ".service");
        struct stat st {};
        if (lstat(path.c_str(), &st) == 0) out.push_back(path);
      }
    }
  }
  for (char level = '0'; level <= '6'; ++level) {
    for (const std::string& base :
         {absl::StrCat(etc_root, "/rc", std::string(1, level), ".d"),
          absl::StrCat(etc_root, "/rc.d/rc", std::string(1, level), ".d")}) {
      DIR* d = opendir(base.c_str());
      if (d == nullptr) continue;
      std::vector<std::string> found;
      while (const dirent* e = readdir(d)) {
        // S<NN><name>: started in that runlevel.
        absl::string_view n = e->d_name;
        if (!absl::ConsumePrefix(&n, "S") || n.size() < 3 ||
            !absl::ascii_isdigit(static_cast<unsigned char>(n[0])) ||
            !absl::ascii_isdigit(static_cast<unsigned char>(n[1]))) {
          continue;
        }
        n.remove_prefix(2);
        for (const char* unit : kDaemonUnits) {
          if (n == unit) found.push_back(absl::StrCat(base, "/", e->d_name));
        }
      }
      closedir(d);
      std::sort(found.begin(), found.end());
      for (std::string& f : found) out.push_back(std::move(f));
    }
  }
  return out;
}

ProbeResult ClassifyReply(const ntp::NtpPacket& reply, absl::Time t1,
                          absl::Time t4) {
  ProbeResult r;
  r.stratum = reply.stratum;
  r.leap = static_cast<int>(reply.leap);
  r.refid = reply.reference_id.ToString(reply.stratum);
  if (reply.IsKissOfDeath()) {
    const std::string code = reply.reference_id.AsCode();
    // RFC 5905 §7.4: a kiss code is four ASCII letters; a stratum-0 reply
    // without one is just an unsynchronised server.
    if (!code.empty() && std::all_of(code.begin(), code.end(), [](char c) {
          return absl::ascii_isupper(static_cast<unsigned char>(c));
        })) {
      r.outcome = ProbeOutcome::kKissOfDeath;
      r.kiss_code = code;
      return r;
    }
    r.outcome = ProbeOutcome::kUnsynchronised;
    return r;
  }
  if (reply.leap == ntp::Leap::kUnsynchronized || reply.stratum >= 16) {
    r.outcome = ProbeOutcome::kUnsynchronised;
    return r;
  }
  // RFC 5905 §8: theta = ((T2 - T1) + (T3 - T4)) / 2, delta = (T4 - T1) -
  // (T3 - T2). T1 and T4 are absolute here; T2 and T3 are taken in T1's era.
  const absl::Time t2 = reply.receive.ToTime(t1);
  const absl::Time t3 = reply.transmit.ToTime(t1);
  r.offset = ((t2 - t1) + (t3 - t4)) / 2;
  r.delay = (t4 - t1) - (t3 - t2);
  r.outcome = ProbeOutcome::kAnswered;
  return r;
}

absl::StatusOr<DoctorFacts> GatherFacts(const GatherOptions& o) {
  DoctorFacts f;
  f.config.path = o.config_path;
  absl::StatusOr<std::string> text = config::ReadConfigText(o.config_path);
  if (!text.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read the agent's configuration: ", text.status().message(),
        " (give its path with --config FILE)"));
  }
  config::DiskIncludeLoader loader;
  config::AgentConfig cfg;
  std::string half_tls;
  absl::StatusOr<config::AgentConfig> parsed =
      config::ParseConfig(*text, o.config_path, loader);
  if (!parsed.ok() &&
      absl::StrContains(parsed.status().message(), "mutual TLS needs")) {
    half_tls = std::string(parsed.status().message());
    parsed = config::ParseConfig(WithoutTlsLines(*text), o.config_path, loader);
  }
  if (parsed.ok()) {
    cfg = *std::move(parsed);
    f.config.warnings = cfg.warnings;
    if (!half_tls.empty()) {
      f.config.error = half_tls;
      f.config.rest_read = true;
    }
  } else {
    f.config.error = std::string(parsed.status().message());
  }

  const std::vector<ProcessFact> processes = ListProcesses(o.proc_root);
  GatherAgent(o, cfg.port, &f.agent);

  // 1. The port: the one the running agent serves, else the config's.
  f.port.port = cfg.port;
  f.port.port_from = f.config.known() ? "from agent.conf" : "the default";
  if (f.agent.status.has_value() && f.agent.status->server_port() != 0) {
    f.port.port = static_cast<int>(f.agent.status->server_port());
    f.port.port_from = "the running agent's";
  }
  for (const char* table : {"/net/udp", "/net/udp6"}) {
    if (std::optional<std::string> t = ReadSmallFile(o.proc_root + table)) {
      if (!net::UdpSocketInodes(*t, static_cast<uint16_t>(f.port.port)).empty())
        f.port.in_use = true;
    }
  }
  if (std::optional<net::PortOwner> owner = net::FindUdpPortOwner(
          static_cast<uint16_t>(f.port.port), o.proc_root)) {
    f.port.owner = ProcessFact{owner->pid, Printable(owner->command)};
  }

  // 2. Other time daemons.
  for (const ProcessFact& p : processes) {
    if (IsTimeDaemon(p.comm) && p.pid != f.agent.pid)
      f.daemons.running.push_back(p);
  }
  struct stat st {};
  if (stat("/run/systemd/system", &st) == 0 && o.etc_root == "/etc") {
    f.daemons.enabled = EnabledBySystemctl();
  } else {
    f.daemons.enabled = EnabledInEtc(o.etc_root);
  }
  f.daemons.cron = CronLinesIn(o);

  // 4. Upstreams: doctor's own query to each, and the agent's view.
  std::vector<absl::StatusOr<Target>> targets;
  for (const config::ServerEntry& s : cfg.servers) {
    UpstreamFacts u;
    u.name = s.port == 123 ? s.host : absl::StrCat(s.host, ":", s.port);
    u.is_pool = s.is_pool;
    if (f.agent.status.has_value()) {
      for (const v1::PeerStatus& p : f.agent.status->status().peers()) {
        if (p.remote() == s.host &&
            (p.address().empty() ||
             absl::EndsWith(p.address(), absl::StrCat(":", s.port)))) {
          u.agent_view = p;
          break;
        }
      }
    }
    f.upstreams.push_back(std::move(u));
    targets.push_back(ResolveOne(s.host, s.port, s.family, SOCK_DGRAM));
  }
  if (cfg.local_clock.has_value())
    f.local_clock_stratum = cfg.local_clock->stratum;

  // 8. On a serving node: its own server on each address it serves on.
  std::vector<absl::StatusOr<Target>> local_targets;
  std::vector<bool> local_loopback;
  if (f.agent.running && f.agent.status.has_value() &&
      f.agent.status->server_port() != 0) {
    const int port = static_cast<int>(f.agent.status->server_port());
    std::vector<std::string> bound = BoundIpv4(o.proc_root, port);
    std::vector<std::string> addrs;
    if (std::find(bound.begin(), bound.end(), "0.0.0.0") != bound.end()) {
      addrs.push_back("127.0.0.1");
      for (const std::string& a : LocalIpv4()) addrs.push_back(a);
    } else {
      addrs = bound;
    }
    for (const std::string& a : addrs) {
      local_targets.push_back(
          ResolveOne(a, port, config::AddressFamily::kIpv4, SOCK_DGRAM));
      local_loopback.push_back(absl::StartsWith(a, "127."));
    }
  }
  // All the queries at once: the report waits one timeout at most.
  std::vector<absl::StatusOr<Target>> all = targets;
  for (auto& t : local_targets) all.push_back(t);
  std::vector<ProbeResult> probed = ProbeAll(all, o.probe_timeout);
  for (size_t i = 0; i < f.upstreams.size(); ++i)
    f.upstreams[i].probe = probed[i];
  // The query to our own address comes from that address: does our own
  // restrict list serve it? The running agent answers for the rules it runs
  // (ntpfleetctl carries no copy of the server's access control).
  v1::LocalRequest check;
  for (size_t i = 0; i < local_targets.size(); ++i) {
    const std::string& a = probed[targets.size() + i].address;
    if (!a.empty()) check.mutable_serve_check()->add_address(HostOf(a));
  }
  absl::flat_hash_set<std::string> refused;
  if (check.has_serve_check()) {
    absl::StatusOr<v1::LocalResponse> r =
        local_control::CallAgent(o.control_socket, check, absl::Seconds(3));
    if (r.ok() && r->has_serve_check()) {
      for (const v1::ServeVerdict& v : r->serve_check().verdict()) {
        if (v.refused()) refused.insert(v.address());
      }
    }
  }
  for (size_t i = 0; i < local_targets.size(); ++i) {
    const ProbeResult& r = probed[targets.size() + i];
    LocalServeProbe lp;
    lp.address = r.address.empty() ? "?" : r.address;
    lp.loopback = local_loopback[i];
    lp.answered = r.outcome == ProbeOutcome::kAnswered ||
                  r.outcome == ProbeOutcome::kUnsynchronised ||
                  r.outcome == ProbeOutcome::kKissOfDeath;
    lp.refused_by_restrict =
        !r.address.empty() && refused.contains(HostOf(r.address));
    f.firewall.local.push_back(lp);
  }

  // 5. The controller; then, for silent upstreams, what it knows of them.
  GatherController(cfg, half_tls, o.connect_timeout, &f.controller);
  GatherServingEvidence(cfg, o, &f);

  // 6, 7.
  GatherDrift(cfg, f.agent, &f.drift);
  GatherKernel(&f.kernel);
  return f;
}

}  // namespace ntpfleet::ctl
