"""The binaries that the .rpm packages and the tarball carry.

They must be fully static (no ELF interpreter, no shared library: they run on
CentOS 7's glibc 2.17 and in an empty root). Until the -static targets exist
these are the dynamic binaries; switched to the -static targets at merge:
  //agent:ntpfleet-agent-static, //controller:ntpfleet-controller-static,
  //ctl:ntpfleetctl-static.
tests/packaging checks that the binaries are static exactly when all three
labels below end in "-static", so the switch turns those checks on.
"""

STATIC_BINARIES = {
    "ntpfleet-agent": "//agent:ntpfleet-agent",
    "ntpfleet-controller": "//controller:ntpfleet-controller",
    "ntpfleetctl": "//ctl:ntpfleetctl",
}

def binaries_are_static():
    return all([label.endswith("-static") for label in STATIC_BINARIES.values()])
