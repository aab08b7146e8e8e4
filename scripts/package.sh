#!/usr/bin/env bash
# Builds ntpfleet's seven packages offline into dist/ (docs/INSTALL.md says how to install them):
#   ntpfleet-agent_VERSION_amd64.deb, ntpfleet-controller_VERSION_amd64.deb,
#   ntpfleetctl_VERSION_amd64.deb                    Debian 12 (shared libraries; lintian clean)
#   ntpfleet-agent-VERSION-1.x86_64.rpm, ...        RHEL/CentOS 7 and later (static binaries)
#   ntpfleet-VERSION-linux-x86_64.tar.gz            static binaries, units, install.sh
# VERSION is the top-level VERSION file. One Bazel command builds them (//:packages, see
# deploy/packaging/BUILD); this script only copies them out under their versioned names.
#
#   scripts/package.sh               # runs scripts/setup.sh first (rpm, dpkg-dev, ... if missing)
#   DIST=/tmp/out scripts/package.sh
#
# The clock of this machine is never touched: Bazel runs without CAP_SYS_TIME, as in
# scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/no_sys_time.sh
reexec_without_sys_time "$0" "$@"

bash scripts/setup.sh >&2 || { echo "package.sh: scripts/setup.sh failed" >&2; exit 1; }
for tool in bazel dpkg-deb dpkg-shlibdeps rpmbuild; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done

VERSION=$(tr -d ' \n' <VERSION)
DIST=${DIST:-dist}
# No -c opt on the command line: the packaging rules build their binaries with -c opt
# themselves (deploy/packaging/opt.bzl), exactly as `bazel test //...` builds them for the
# packaging tests, so after a test run this only copies.
echo "== bazel build //:packages (ntpfleet $VERSION)"
bazel build //:packages
BIN=$(bazel info bazel-bin 2>/dev/null)/deploy/packaging

mkdir -p "$DIST"
made=()
put() {  # put BAZEL_OUTPUT DIST_NAME
  install -m 0644 "$BIN/$1" "$DIST/$2"
  made+=("$DIST/$2")
}
for pkg in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  put "${pkg}_amd64.deb" "${pkg}_${VERSION}_amd64.deb"
  put "$pkg.x86_64.rpm" "$pkg-$VERSION-1.x86_64.rpm"
done
put ntpfleet-linux-x86_64.tar.gz "ntpfleet-$VERSION-linux-x86_64.tar.gz"

echo "== made ${#made[@]} packages in $DIST/:"
for f in "${made[@]}"; do
  printf '  %-48s %9s bytes  sha256 %s\n' "$(basename "$f")" "$(stat -c %s "$f")" \
    "$(sha256sum "$f" | cut -c1-16)"
done
