#!/bin/bash
# The three .rpm packages: readable by CentOS 7's rpm 4.11 (payload, digests, rpmlib features),
# no requirement a CentOS 7 system cannot meet, and installed with `rpm --root DIR` (an
# initialised rpm database in DIR, a throwaway copy of this machine: lib.sh) so that their
# scriptlets run: files, modes, owners, users, %config files and units as documented, nothing
# enabled or started, `rpm -V` clean, erase removes the programs and keeps state and users.
# The binaries must be static (deploy/packaging/static.bzl).
#
# Usage (from Bazel): rpm_test.sh VERSION_FILE PACKAGE...
source "$(dirname "$0")/lib.sh"
pkgtest_init "$@"

VERSION=$(tr -d ' \n' <"$1")
RPMS=(ntpfleet-agent.x86_64.rpm ntpfleet-controller.x86_64.rpm ntpfleetctl.x86_64.rpm)
for p in "${RPMS[@]}"; do [ -n "${PKG[$p]:-}" ] || die "no $p among the arguments"; done
command -v rpm >/dev/null || die "rpm is missing: run scripts/setup.sh"

# --- what CentOS 7's rpm 4.11 can read -----------------------------------------------------------
# The rpmlib() features rpm 4.11 provides (lib/rpmds.c of 4.11): a package needing any other
# (PayloadIsZstd, RichDependencies, FileTriggers, ...) is refused there.
RPM411_FEATURES="BuiltinLuaScripts CompressedFileNames ConcurrentAccess ExplicitPackageProvide
FileCaps FileDigests HeaderLoadSortsTags PartialHardlinkSets PayloadFilesHavePrefix
PayloadIsBzip2 PayloadIsLzma PayloadIsXz ScriptletExpansion ScriptletInterpreterArgs
TildeInVersions VersionedDependencies"
for p in "${RPMS[@]}"; do
  f=${PKG[$p]}
  name=${p%.x86_64.rpm}
  check "$name: version $VERSION-1, x86_64" \
    [ "$(rpm -qp --qf '%{VERSION}-%{RELEASE} %{ARCH}' "$f")" = "$VERSION-1 x86_64" ]
  comp=$(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$f")
  check "$name: payload $comp (rpm 4.11 reads gzip, xz, bzip2)" grep -Eqx 'gzip|xz|bzip2' <<<"$comp"
  algo=$(rpm -qp --qf '%{FILEDIGESTALGO}' "$f")
  check "$name: file digests algorithm $algo (1 = MD5 or 8 = SHA-256)" grep -Eqx '1|8' <<<"$algo"
  bad=""
  for feature in $(rpm -qpR "$f" | sed -n 's/^rpmlib(\([A-Za-z0-9]*\)).*/\1/p'); do
    [[ " $(echo $RPM411_FEATURES) " == *" $feature "* ]] || bad="$bad $feature"
  done
  check "$name: only rpmlib() features rpm 4.11 has${bad:+ (not:$bad)}" [ -z "$bad" ]
  # Nothing but the shell, shadow-utils and systemd (all in CentOS 7's base): no library soname,
  # no glibc symbol version (the binaries are static; AutoReqProv: no).
  others=$(rpm -qpR "$f" | { grep -Ev '^(rpmlib\(|/bin/sh$|shadow-utils$|systemd$|config\()' || true; } | sort -u | tr '\n' ' ')
  check "$name: requires nothing beyond /bin/sh, shadow-utils, systemd${others:+ (also: $others)}" [ -z "$others" ]
  check "$name: header and payload digests verify (rpm -K)" rpm -K --nosignature "$f"
done
check "the agent requires shadow-utils before install (%pre creates the user)" \
  bash -c "rpm -qp --qf '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]' '${PKG[ntpfleet-agent.x86_64.rpm]}' | grep -q '^shadow-utils pre'"

# --- install with rpm --root ---------------------------------------------------------------------
new_root
log "root: $ROOT"
rpm --root "$ROOT" --initdb
# --nodeps: the rpm database in ROOT is new and empty (this Debian system's packages are not in
# it), so /bin/sh, shadow-utils and systemd look missing; what is required is checked above.
if out=$(rpm --root "$ROOT" -i --nodeps "${RPMS[@]/#/$ROOT/pkgs/}" 2>&1); then
  ok "rpm --root -i of the three packages"
else
  fail "rpm --root -i of the three packages"
  echo "$out" | sed 's/^/    /'
  finish
  exit 1
fi
[ -z "$out" ] || echo "$out" | sed 's/^/    rpm: /'
for p in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  check "$p-$VERSION-1 is installed" [ "$(rpm --root "$ROOT" -q --qf '%{VERSION}-%{RELEASE}' "$p")" = "$VERSION-1" ]
done
check "/usr/sbin/ntpfleet-agent 0755 root" stat_is /usr/sbin/ntpfleet-agent 755 root:root
check "/usr/sbin/ntpfleet-controller 0755 root" stat_is /usr/sbin/ntpfleet-controller 755 root:root
check "/usr/bin/ntpfleetctl 0755 root" stat_is /usr/bin/ntpfleetctl 755 root:root
check "agent unit in /usr/lib/systemd/system" stat_is /usr/lib/systemd/system/ntpfleet-agent.service 644 root:root
check "controller unit in /usr/lib/systemd/system" stat_is /usr/lib/systemd/system/ntpfleet-controller.service 644 root:root
check "/etc/ntpfleet/agent.conf 0644 root" stat_is /etc/ntpfleet/agent.conf 644 root:root
check "/etc/ntpfleet/controller.flags 0644 root" stat_is /etc/ntpfleet/controller.flags 644 root:root
check "/etc/ntpfleet/tls 0755 root" stat_is /etc/ntpfleet/tls 755 root:root
check "/var/lib/ntpfleet 0755 ntpfleet (set by rpm itself)" stat_is /var/lib/ntpfleet 755 ntpfleet:ntpfleet
check "/var/lib/ntpfleet-controller 0750 ntpfleet-controller" \
  stat_is /var/lib/ntpfleet-controller 750 ntpfleet-controller:ntpfleet-controller
check "man pages and docs" in_root test -f /usr/share/man/man8/ntpfleet-agent.8.gz -a \
  -f /usr/share/man/man1/ntpfleetctl.1.gz -a -f /usr/share/doc/ntpfleet-agent/AGENT.md -a \
  -f /usr/share/doc/ntpfleet-controller/copyright
check "user ntpfleet (by %pre): system user, home /var/lib/ntpfleet, no login" \
  system_user ntpfleet /var/lib/ntpfleet
check "user ntpfleet-controller (by %pre): system user, no login" \
  system_user ntpfleet-controller /var/lib/ntpfleet-controller
check "%config(noreplace): agent.conf and controller.flags" \
  [ "$(rpm --root "$ROOT" -qc ntpfleet-agent ntpfleet-controller | tr '\n' ' ')" = "/etc/ntpfleet/agent.conf /etc/ntpfleet/controller.flags " ]
if out=$(rpm --root "$ROOT" -V --nodeps ntpfleet-agent ntpfleet-controller ntpfleetctl 2>&1); then
  ok "rpm -V: every installed file as packaged"
else
  fail "rpm -V:"
  echo "$out" | sed 's/^/    /'
fi
check_agent_unit "$ROOT/usr/lib/systemd/system/ntpfleet-agent.service"
check_controller_unit "$ROOT/usr/lib/systemd/system/ntpfleet-controller.service"
verify_units /usr/lib/systemd/system/ntpfleet-agent.service /usr/lib/systemd/system/ntpfleet-controller.service
check "not enabled" in_root sh -c '! ls /etc/systemd/system/multi-user.target.wants/ntpfleet-* 2>/dev/null'
check "no systemctl call without a running systemd (got: $(systemctl_calls | tr '\n' ';'))" [ -z "$(systemctl_calls)" ]
check "nothing started" nothing_running

for b in /usr/sbin/ntpfleet-agent /usr/sbin/ntpfleet-controller /usr/bin/ntpfleetctl; do
  check "$b is static (no interpreter, no shared library)" is_static "$ROOT$b"
done
check_binaries_run /usr/sbin /usr/bin "$VERSION" controller

# --- an upgrade under a running systemd restarts only what runs; erase keeps state and users ----
systemd_running yes
reset_systemctl_log
check "rpm -U --replacepkgs (an upgrade's scriptlets)" \
  rpm --root "$ROOT" -U --replacepkgs --nodeps "$ROOT/pkgs/ntpfleet-agent.x86_64.rpm"
check "upgrade under systemd: try-restart only (got: $(systemctl_calls | tr '\n' ';'))" \
  bash -c "! grep -Eq '(^| )(start|restart|enable|preset)( |\$)' '$ROOT/var/log/systemctl.log' && grep -q 'try-restart ntpfleet-agent.service' '$ROOT/var/log/systemctl.log'"
systemd_running no
echo "# edited" >>"$ROOT/etc/ntpfleet/agent.conf"
in_root setpriv --reuid=ntpfleet --regid=ntpfleet --clear-groups touch /var/lib/ntpfleet/drift
reset_systemctl_log
check "rpm -e of the three" rpm --root "$ROOT" -e ntpfleet-agent ntpfleet-controller ntpfleetctl
check "erase: binaries and units gone" in_root sh -c '! ls /usr/sbin/ntpfleet-* /usr/bin/ntpfleetctl /usr/lib/systemd/system/ntpfleet-* 2>/dev/null'
check "erase: the edited agent.conf is kept as agent.conf.rpmsave" in_root test -f /etc/ntpfleet/agent.conf.rpmsave
check "erase: the drift file and the users stay (rpm has no purge; Fedora's rule for users)" \
  in_root sh -c 'test -f /var/lib/ntpfleet/drift && getent passwd ntpfleet >/dev/null && getent passwd ntpfleet-controller >/dev/null'
check "erase without systemd: no start or stop (got: $(systemctl_calls | tr '\n' ';'))" no_service_action
check "nothing started" nothing_running

finish
