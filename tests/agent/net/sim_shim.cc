// An LD_PRELOAD stand-in for what an LD_PRELOAD clock/network simulator
// (chrony's clknetsim is the common one) does to a daemon's I/O calls, reduced
// to the parts that decide whether ntpfleet-agent can run under one. Written
// for this test from the simulators' documented behaviour, not from their code:
//
//  - poll(): a descriptor the simulator does not know is reported readable at
//    once (clknetsim does this so that daemons waiting on a name-resolver pipe
//    or /dev/urandom make progress). It knows its sockets and the eventfd and
//    timerfd descriptors it made. Here: every non-socket descriptor that did
//    not come from eventfd()/timerfd_create() is "unknown"; a pipe in the poll
//    set therefore makes a loop spin.
//  - socket(): only AF_INET (and AF_UNIX where the simulation has a Unix
//    network; not here) with a plain SOCK_DGRAM/SOCK_STREAM type: no
//    SOCK_NONBLOCK/SOCK_CLOEXEC flags, no IPv6. The rest fails with EINVAL.
//  - sendmmsg(): not simulated; the call reaches the kernel with a descriptor
//    the kernel does not have. Here: it fails with EBADF.
//
// What happened is counted and written, one "name value" per line, to the file
// $SIM_SHIM_REPORT when the process exits:
//   polls          poll() calls
//   unknown_ready  poll() calls answered at once because of an unknown fd
//   bad_sockets    socket() calls refused for their type or family (not IPv6)
//   ipv6_sockets   socket(AF_INET6, ...) calls refused
//   sendmmsg       sendmmsg() calls refused
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace {

constexpr int kMaxFd = 4096;
std::atomic<bool> known[kMaxFd];

std::atomic<uint64_t> polls{0};
std::atomic<uint64_t> unknown_ready{0};
std::atomic<uint64_t> bad_sockets{0};
std::atomic<uint64_t> ipv6_sockets{0};
std::atomic<uint64_t> sendmmsg_calls{0};

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

void Remember(int fd) {
  if (fd >= 0 && fd < kMaxFd) known[fd].store(true);
}

bool Unknown(int fd) {
  if (fd >= 0 && fd < kMaxFd && known[fd].load()) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;  // closed: poll says POLLNVAL
  return !S_ISSOCK(st.st_mode);
}

__attribute__((destructor)) void WriteReport() {
  const char* path = getenv("SIM_SHIM_REPORT");
  if (path == nullptr) return;
  FILE* f = fopen(path, "w");
  if (f == nullptr) return;
  fprintf(f,
          "polls %llu\nunknown_ready %llu\nbad_sockets %llu\n"
          "ipv6_sockets %llu\nsendmmsg %llu\n",
          static_cast<unsigned long long>(polls.load()),
          static_cast<unsigned long long>(unknown_ready.load()),
          static_cast<unsigned long long>(bad_sockets.load()),
          static_cast<unsigned long long>(ipv6_sockets.load()),
          static_cast<unsigned long long>(sendmmsg_calls.load()));
  fclose(f);
}

}  // namespace

extern "C" {

int poll(struct pollfd* fds, nfds_t nfds, int timeout) {
  static const auto real = Next<int (*)(struct pollfd*, nfds_t, int)>("poll");
  polls.fetch_add(1);
  int ready = 0;
  for (nfds_t i = 0; i < nfds; ++i) {
    fds[i].revents = 0;
    if (fds[i].fd >= 0 && (fds[i].events & POLLIN) && Unknown(fds[i].fd)) {
      fds[i].revents = POLLIN;
      ++ready;
    }
  }
  if (ready > 0) {
    unknown_ready.fetch_add(1);
    return ready;
  }
  return real(fds, nfds, timeout);
}

int __poll_chk(struct pollfd* fds, nfds_t nfds, int timeout, size_t) {
  return poll(fds, nfds, timeout);
}

int eventfd(unsigned int initval, int flags) {
  static const auto real = Next<int (*)(unsigned int, int)>("eventfd");
  const int fd = real(initval, flags);
  Remember(fd);
  return fd;
}

int timerfd_create(int clockid, int flags) {
  static const auto real = Next<int (*)(int, int)>("timerfd_create");
  const int fd = real(clockid, flags);
  Remember(fd);
  return fd;
}

int close(int fd) {
  static const auto real = Next<int (*)(int)>("close");
  if (fd >= 0 && fd < kMaxFd) known[fd].store(false);
  return real(fd);
}

int socket(int domain, int type, int protocol) {
  static const auto real = Next<int (*)(int, int, int)>("socket");
  if (domain == AF_INET6) {
    ipv6_sockets.fetch_add(1);
    errno = EINVAL;
    return -1;
  }
  if (domain != AF_INET || (type != SOCK_DGRAM && type != SOCK_STREAM)) {
    bad_sockets.fetch_add(1);
    errno = EINVAL;
    return -1;
  }
  return real(domain, type, protocol);
}

int sendmmsg(int, struct mmsghdr*, unsigned int, int) {
  sendmmsg_calls.fetch_add(1);
  errno = EBADF;
  return -1;
}

}  // extern "C"
