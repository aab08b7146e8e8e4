// kernel_3_10 PROGRAM [ARGS...]: runs PROGRAM as on Linux 3.10 (CentOS 7's
// kernel) as far as system calls go: every x86-64 system call added after 3.10
// fails with ENOSYS, which is what 3.10 answers for a number it does not know.
// On x86-64, 3.10's last system call is finit_module (313); everything numbered
// from 314 on is newer: sched_setattr (3.14), renameat2 (3.15), seccomp and
// getrandom (3.17), memfd_create, bpf, execveat, copy_file_range, statx (4.11),
// rseq (4.18), clone3 (5.3), close_range, faccessat2, ... (and the x32 ABI's
// numbers, which all have bit 30 set).
//
// uname(2) reports a 2.6 kernel (the UNAME26 personality): libraries that
// choose a fallback by the kernel's version see an old one. OpenSSL does:
// without getrandom it reads /dev/urandom only once /dev/random is readable, a
// wait it trusts on kernels before 4.8 only.
//
// What this cannot show: new flags to old system calls (an old kernel answers
// EINVAL for a flag it does not know, this one accepts it), and /proc or /sys
// files an old kernel lacks.
//
// A seccomp filter (prctl(PR_SET_SECCOMP), Linux 3.5; no_new_privs so that no
// privilege is needed) stays in force across execve and in every thread and
// child.
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

// The first system call number Linux 3.10 does not have on x86-64.
constexpr unsigned kFirstAfter310 = 314;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kernel_3_10 PROGRAM [ARGS...]\n");
    return 2;
  }
  sock_filter filter[] = {
      // Only the x86-64 ABI (a 32-bit int 0x80 call would have other numbers):
      // kill others.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, kFirstAfter310, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{};
  program.len = static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0]));
  program.filter = filter;
  if (personality(PER_LINUX | UNAME26) == -1) {
    std::fprintf(stderr,
                 "kernel_3_10: cannot set the UNAME26 personality: %s\n",
                 std::strerror(errno));
    return 2;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    std::fprintf(stderr, "kernel_3_10: cannot install the seccomp filter: %s\n",
                 std::strerror(errno));
    return 2;
  }
  execv(argv[1], argv + 1);
  std::fprintf(stderr, "kernel_3_10: cannot run %s: %s\n", argv[1],
               std::strerror(errno));
  return 127;
}
