#!/usr/bin/env bash
# Builds ntpfleet's packages from files Bazel already built (deploy/packaging/BUILD runs it; offline, no
# compiler). One staging function lays out each package's files for all three formats, so the
# .deb, the .rpm and the tarball cannot drift apart.
#
#   build.sh deb PACKAGE OUT.deb -- INPUT...     ntpfleet-agent, ntpfleet-controller or ntpfleetctl
#   build.sh rpm OUTDIR -- INPUT...              the three .rpm files, into OUTDIR
#   build.sh tarball OUT.tar.gz -- INPUT...      ntpfleet-VERSION-linux-x86_64/ with install.sh
#
# INPUTs are found by their base name (every input of one call has a different one): VERSION,
# the binaries (ntpfleet-agent, ntpfleet-controller, ntpfleetctl), the units, the default
# configurations, the man pages, the docs, deploy/packaging/debian/* and deploy/packaging/rpm/*.
#
# Layout (docs/INSTALL.md describes it for users):
#   /usr/sbin/ntpfleet-agent, /usr/sbin/ntpfleet-controller   daemons, for the administrator (FHS)
#   /usr/bin/ntpfleetctl                                      anyone may run it (status needs a cert)
#   /etc/ntpfleet/agent.conf, /etc/ntpfleet/controller.flags  configuration (conffiles)
#   /etc/ntpfleet/tls/                                        certificates, put there by the admin
#   /var/lib/ntpfleet/             (user ntpfleet)            the agent's drift file
#   /var/lib/ntpfleet-controller/  (user ntpfleet-controller) the controller's database
#   units in /lib/systemd/system (.deb), /usr/lib/systemd/system (.rpm), /etc/systemd/system (tarball)
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

mode=$1
shift
args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  args+=("$1")
  shift
done
[ "${1:-}" = "--" ] || { echo "build.sh: usage: build.sh MODE ARGS... -- INPUT..." >&2; exit 2; }
shift
declare -A IN
for f in "$@"; do
  b=$(basename "$f")
  if [ -n "${IN[$b]:-}" ] && [ "${IN[$b]}" != "$f" ]; then
    echo "build.sh: two inputs named $b: ${IN[$b]} and $f" >&2
    exit 2
  fi
  IN[$b]=$f
done
input() {
  [ -n "${IN[$1]:-}" ] || { echo "build.sh: missing input $1" >&2; exit 2; }
  echo "${IN[$1]}"
}

die() { echo "build.sh: $*" >&2; exit 1; }

VERSION=$(tr -d ' \n' <"$(input VERSION)")
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION '$VERSION' is not MAJOR.MINOR.PATCH"
CHANGELOG=$(input changelog)
cl_version=$(dpkg-parsechangelog -l "$CHANGELOG" -S Version)
[ "$cl_version" = "$VERSION" ] ||
  die "deploy/packaging/debian/changelog's latest entry is $cl_version, VERSION is $VERSION: add a changelog entry"
MAINTAINER=$(dpkg-parsechangelog -l "$CHANGELOG" -S Maintainer)
# Reproducible packages: every timestamp is the latest changelog entry's.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$CHANGELOG" -S Timestamp)
export SOURCE_DATE_EPOCH

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ntpfleet-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# install_file SRC DEST MODE [gzip]: DEST is a full path inside the stage.
install_file() {
  local src=$1 dest=$2 filemode=$3
  mkdir -p "$(dirname "$dest")"
  if [ "${4:-}" = gzip ]; then
    gzip -9n <"$src" >"$dest"
  else
    cp "$src" "$dest"
  fi
  chmod "$filemode" "$dest"
}

# install_binary SRC DEST: stripped as dh_strip does (symbols and debug info out; the packages
# carry no debug files).
install_binary() {
  mkdir -p "$(dirname "$2")"
  strip --remove-section=.comment --remove-section=.note -o "$2" "$1"
  chmod 0755 "$2"
}

# stage PACKAGE ROOT FLAVOR: the files of PACKAGE under ROOT as installed on the target system.
# FLAVOR deb or rpm. (The tarball lays out the same files itself, below.)
stage() {
  local pkg=$1 root=$2 flavor=$3
  local unitdir=/lib/systemd/system
  [ "$flavor" = rpm ] && unitdir=/usr/lib/systemd/system
  local doc=$root/usr/share/doc/$pkg
  install_file "$(input copyright)" "$doc/copyright" 0644
  install_file "$CHANGELOG" "$doc/changelog.gz" 0644 gzip
  case "$pkg" in
    ntpfleet-agent)
      install_binary "$(input ntpfleet-agent)" "$root/usr/sbin/ntpfleet-agent"
      install_file "$(input ntpfleet-agent.service)" "$root$unitdir/ntpfleet-agent.service" 0644
      install_file "$(input agent.conf)" "$root/etc/ntpfleet/agent.conf" 0644
      mkdir -p "$root/etc/ntpfleet/tls" "$root/var/lib/ntpfleet"
      install_file "$(input ntpfleet-agent.8)" "$root/usr/share/man/man8/ntpfleet-agent.8.gz" 0644 gzip
      install_file "$(input AGENT.md)" "$doc/AGENT.md" 0644
      install_file "$(input README.md)" "$doc/DEPLOY.md" 0644
      install_file "$(input agent-client.conf)" "$doc/examples/agent-client.conf" 0644
      install_file "$(input agent-server.conf)" "$doc/examples/agent-server.conf" 0644
      ;;
    ntpfleet-controller)
      install_binary "$(input ntpfleet-controller)" "$root/usr/sbin/ntpfleet-controller"
      install_file "$(input ntpfleet-controller.service)" "$root$unitdir/ntpfleet-controller.service" 0644
      install_file "$(input controller.flags)" "$root/etc/ntpfleet/controller.flags" 0644
      mkdir -p "$root/etc/ntpfleet/tls" "$root/var/lib/ntpfleet-controller"
      install_file "$(input ntpfleet-controller.8)" "$root/usr/share/man/man8/ntpfleet-controller.8.gz" 0644 gzip
      install_file "$(input CONTROLLER.md)" "$doc/CONTROLLER.md" 0644
      install_file "$(input SECURITY.md)" "$doc/SECURITY.md" 0644
      ;;
    ntpfleetctl)
      install_binary "$(input ntpfleetctl)" "$root/usr/bin/ntpfleetctl"
      install_file "$(input ntpfleetctl.1)" "$root/usr/share/man/man1/ntpfleetctl.1.gz" 0644 gzip
      install_file "$(input CONTROLLER.md)" "$doc/CONTROLLER.md" 0644
      install_file "$(input SECURITY.md)" "$doc/SECURITY.md" 0644
      ;;
    *) die "unknown package $pkg" ;;
  esac
  if [ "$flavor" = deb ] && [ -n "${IN[$pkg.lintian-overrides]:-}" ]; then
    install_file "$(input "$pkg.lintian-overrides")" "$root/usr/share/lintian/overrides/$pkg" 0644
  fi
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

build_deb() {
  local pkg=$1 out=$2
  local root=$WORK/root
  stage "$pkg" "$root" deb
  mkdir -p "$root/DEBIAN"
  local s
  for s in postinst prerm postrm; do
    if [ -n "${IN[$pkg.$s]:-}" ]; then install_file "$(input "$pkg.$s")" "$root/DEBIAN/$s" 0755; fi
  done
  (cd "$root" && find . -path './etc/*' -type f | sort | sed 's|^\.||') >"$root/DEBIAN/conffiles"
  [ -s "$root/DEBIAN/conffiles" ] || rm "$root/DEBIAN/conffiles"

  # Depends on the shared libraries the binary links, with the versions their packages'
  # symbols files require (what dh_shlibdeps does).
  local b exe=()
  for b in $(cd "$root" && find . -path './usr/bin/*' -o -path './usr/sbin/*' | sort); do exe+=("-e$root/$b"); done
  mkdir -p "$WORK/shlibs/debian"
  printf 'Source: ntpfleet\n\nPackage: %s\nArchitecture: amd64\n' "$pkg" >"$WORK/shlibs/debian/control"
  local shlibs
  shlibs=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O "${exe[@]}" 2>"$WORK/shlibdeps.err") ||
    { cat "$WORK/shlibdeps.err" >&2; die "dpkg-shlibdeps failed for $pkg"; }
  shlibs=${shlibs#shlibs:Depends=}
  [ -n "$shlibs" ] || die "dpkg-shlibdeps found no library for $pkg"
  local size
  size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
  sed -e "s|@VERSION@|$VERSION|" -e "s|@MAINTAINER@|$MAINTAINER|" \
    -e "s|@INSTALLED_SIZE@|$size|" -e "s|@SHLIBS@|$shlibs|" \
    "$(input "$pkg.control")" >"$root/DEBIAN/control"
  if grep -q '@[A-Z_]*@' "$root/DEBIAN/control"; then die "unfilled field in $pkg's control"; fi
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
    xargs md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums" "$root"/DEBIAN/conffiles 2>/dev/null || true
  touch -h -d "@$SOURCE_DATE_EPOCH" "$root/DEBIAN" "$root"/DEBIAN/*
  # --root-owner-group: every file root:root in the archive; the maintainer scripts give
  # /var/lib/ntpfleet* to their users, who do not exist before postinst.
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
}

# rpm_files PACKAGE ROOT: the %files list of PACKAGE's staged tree ROOT. Only directories that
# are ntpfleet's own are owned (system directories belong to filesystem/systemd and must not
# conflict with them); /etc files are %config(noreplace), docs %doc.
rpm_files() {
  local pkg=$1 root=$2
  echo "%files -n $pkg"
  local path
  (cd "$root" && find . -mindepth 1 | sed 's|^\.||' | sort) | while read -r path; do
    if [ -d "$root$path" ]; then
      case "$path" in
        /etc/ntpfleet | /etc/ntpfleet/tls | /usr/share/doc/"$pkg" | /usr/share/doc/"$pkg"/*)
          echo "%dir %attr(0755,root,root) $path" ;;
        /var/lib/ntpfleet)
          echo "%dir %attr(0755,ntpfleet,ntpfleet) $path" ;;
        /var/lib/ntpfleet-controller)
          echo "%dir %attr(0750,ntpfleet-controller,ntpfleet-controller) $path" ;;
      esac
    else
      local m
      m=$(stat -c %a "$root$path")
      case "$path" in
        /etc/*) echo "%config(noreplace) %attr(0$m,root,root) $path" ;;
        /usr/share/doc/*) echo "%doc %attr(0$m,root,root) $path" ;;
        *) echo "%attr(0$m,root,root) $path" ;;
      esac
    fi
  done
}

build_rpm() {
  local outdir=$1
  local stage_all=$WORK/stage spec=$WORK/ntpfleet.spec
  sed -e "s|@VERSION@|$VERSION|" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@STAGE@|$stage_all|" \
    "$(input ntpfleet.spec.in)" >"$spec"
  local pkg
  for pkg in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
    stage "$pkg" "$WORK/stage-$pkg" rpm
    rpm_files "$pkg" "$WORK/stage-$pkg" >>"$spec"
    echo >>"$spec"
    mkdir -p "$stage_all"
    cp -a "$WORK/stage-$pkg"/. "$stage_all"/
  done
  {
    echo "%changelog"
    echo "* $(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y') $MAINTAINER - $VERSION-1"
    dpkg-parsechangelog -l "$CHANGELOG" -S Changes | sed -n 's/^  \*/-/p; s/^    /  /p'
  } >>"$spec"
  mkdir -p "$WORK/home" "$WORK/top" "$WORK/tmp"
  # HOME: no ~/.rpmmacros of whoever builds; %_topdir/%_tmppath: everything inside $WORK.
  HOME=$WORK/home rpmbuild -bb --quiet --target x86_64-linux \
    --define "_topdir $WORK/top" --define "_tmppath $WORK/tmp" \
    --define "_rpmdir $WORK/rpms" --define "_rpmfilename %%{NAME}.%%{ARCH}.rpm" \
    "$spec" >"$WORK/rpmbuild.log" 2>&1 || { cat "$WORK/rpmbuild.log" >&2; die "rpmbuild failed"; }
  for pkg in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
    cp "$WORK/rpms/$pkg.x86_64.rpm" "$outdir/$pkg.x86_64.rpm" || { find "$WORK/rpms" >&2; cat "$WORK/rpmbuild.log" >&2; die "no $pkg.x86_64.rpm"; }
  done
}

build_tarball() {
  local out=$1
  local name=ntpfleet-$VERSION-linux-x86_64
  local t=$WORK/$name
  install_binary "$(input ntpfleet-agent)" "$t/sbin/ntpfleet-agent"
  install_binary "$(input ntpfleet-controller)" "$t/sbin/ntpfleet-controller"
  install_binary "$(input ntpfleetctl)" "$t/bin/ntpfleetctl"
  install_file "$(input ntpfleet-agent.service)" "$t/systemd/ntpfleet-agent.service" 0644
  install_file "$(input ntpfleet-controller.service)" "$t/systemd/ntpfleet-controller.service" 0644
  install_file "$(input agent.conf)" "$t/etc/ntpfleet/agent.conf" 0644
  install_file "$(input controller.flags)" "$t/etc/ntpfleet/controller.flags" 0644
  install_file "$(input ntpfleet-agent.8)" "$t/share/man/man8/ntpfleet-agent.8" 0644
  install_file "$(input ntpfleet-controller.8)" "$t/share/man/man8/ntpfleet-controller.8" 0644
  install_file "$(input ntpfleetctl.1)" "$t/share/man/man1/ntpfleetctl.1" 0644
  local doc=$t/share/doc/ntpfleet
  install_file "$(input copyright)" "$doc/copyright" 0644
  install_file "$CHANGELOG" "$doc/changelog" 0644
  install_file "$(input AGENT.md)" "$doc/AGENT.md" 0644
  install_file "$(input CONTROLLER.md)" "$doc/CONTROLLER.md" 0644
  install_file "$(input SECURITY.md)" "$doc/SECURITY.md" 0644
  install_file "$(input README.md)" "$doc/DEPLOY.md" 0644
  install_file "$(input agent-client.conf)" "$doc/examples/agent-client.conf" 0644
  install_file "$(input agent-server.conf)" "$doc/examples/agent-server.conf" 0644
  sed "s|@VERSION@|$VERSION|g" "$(input install.sh)" >"$t/install.sh"
  chmod 0755 "$t/install.sh"
  sed "s|@VERSION@|$VERSION|g" "$(input README.tarball)" >"$t/README"
  chmod 0644 "$t/README"
  find "$t" -type d -exec chmod 0755 {} +
  tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime -cf - "$name" | gzip -9n >"$out"
}

case "$mode" in
  deb) build_deb "${args[0]}" "${args[1]}" ;;
  rpm) build_rpm "${args[0]}" ;;
  tarball) build_tarball "${args[0]}" ;;
  *) die "unknown mode $mode" ;;
esac
