#!/usr/bin/env bash
# Installs exactly the Debian 12 packages that building and testing ntpfleet needs, when missing.
# Idempotent; needs root (or sudo) only when something is missing. Never lets a package start a
# daemon: a policy-rc.d that refuses every service start is in place while apt-get runs.
set -euo pipefail

# Build and test dependencies, one per line with why.
PACKAGES=(
  bazel-bootstrap        # Bazel 4.2.3 (the build)
  pkg-config             # the system-library repository rule asks pkg-config for link flags
  g++                    # the C++17 toolchain
  libgrpc++-dev          # gRPC 1.51 C++ (agent <-> controller, ctl)
  protobuf-compiler      # protoc 3.21
  protobuf-compiler-grpc # grpc_cpp_plugin
  libprotobuf-dev        # protobuf runtime and well-known types
  libabsl-dev            # Abseil 20220623: Status, Time, flags, strings, Mutex
  libgtest-dev           # GoogleTest 1.12
  libgmock-dev           # GoogleMock 1.12
  libssl-dev             # OpenSSL 3: MD5/SHA-1/AES-CMAC for NTP MACs
  libsqlite3-dev         # the controller's durable store
  libmicrohttpd-dev      # the controller's HTTP /metrics endpoint
  libc-ares-dev          # name resolution without glibc's NSS (third_party/system/resolver.h)
  clang                  # libFuzzer + ASan for the fuzz targets
  libclang-rt-14-dev     # clang's fuzzer/sanitizer runtimes
  util-linux             # setpriv: tests run without CAP_SYS_TIME
  iproute2               # ip netns for tests that need their own hosts
  nftables               # a firewall inside the installed-fleet test's namespaces (doctor's check)
  openssl                # certificates for the TLS tests
  sqlite3                # the integration tests read the controller's database
  bc                     # arithmetic in the demo script
  python3                # NTPsec's ntpdig (interop tests) is Python; tests parse JSON with it
  python3-prometheus-client # the exposition-format parser the /metrics test reads the page with
  dpkg-dev               # dpkg-shlibdeps, dpkg-parsechangelog: the .deb packages (deploy/packaging/)
  rpm                    # rpmbuild: the .rpm packages; rpm --root: their test
  lintian                # the .deb packages' check (tests/deploy/packaging)
  binutils               # strip, readelf: the packages' binaries and their test
  man-db                 # man --warnings: lintian's check of the man pages
  adduser                # the .debs' maintainer scripts (their test installs them)
  systemd                # systemd-analyze verify: the units' check (tests/deploy/packaging); starts nothing
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} build/test packages are installed."
  exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

# Make sure no package starts a service while it is installed (restored afterwards).
POLICY=/usr/sbin/policy-rc.d
restore_policy=""
if [ ! -e "$POLICY" ] || ! grep -q 'exit 101' "$POLICY"; then
  if [ -e "$POLICY" ]; then
    "${SUDO[@]}" cp -p "$POLICY" "$POLICY.ntpfleet-saved"
    restore_policy="saved"
  else
    restore_policy="absent"
  fi
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
fi
cleanup() {
  case "$restore_policy" in
    saved) "${SUDO[@]}" mv -f "$POLICY.ntpfleet-saved" "$POLICY" ;;
    absent) "${SUDO[@]}" rm -f "$POLICY" ;;
  esac
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when they are missing or the install fails with stale lists.
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -q
fi
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "setup: done."
