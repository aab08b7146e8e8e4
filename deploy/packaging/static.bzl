"""The binaries that the .rpm packages and the tarball carry: fully static (no
ELF interpreter, no shared library), so that they run on CentOS 7's glibc 2.17
and in an empty root (third_party/system/static_binary.bzl). tests/deploy/packaging
checks both.
"""

STATIC_BINARIES = {
    "ntpfleet-agent": "//agent:ntpfleet-agent-static",
    "ntpfleet-controller": "//controller:ntpfleet-controller-static",
    "ntpfleetctl": "//ctl:ntpfleetctl-static",
}
