#!/bin/bash
# The tarball ntpfleet-VERSION-linux-x86_64.tar.gz: exactly the expected files, owned by root;
# install.sh --dry-run changes nothing; --root DIR lays the files out in an empty directory;
# a real install in a throwaway copy of this machine (lib.sh) creates the users, installs the
# units (their paths rewritten to the prefix; systemd-analyze verify), starts nothing, keeps an
# edited agent.conf; --replace-time-daemons disables the other daemons only when given; --start
# refuses the placeholder configuration; --uninstall removes the programs and keeps the rest.
# The binaries must be static (deploy/packaging/static.bzl) and each must run
# `--help` (and the agent `--check-config`) inside an otherwise empty root.
#
# Usage (from Bazel): tarball_test.sh VERSION_FILE PACKAGE...
source "$(dirname "$0")/lib.sh"
pkgtest_init "$@"

VERSION=$(tr -d ' \n' <"$1")
TARBALL=${PKG[ntpfleet-linux-x86_64.tar.gz]:-}
[ -n "$TARBALL" ] || die "no ntpfleet-linux-x86_64.tar.gz among the arguments"
TOP=ntpfleet-$VERSION-linux-x86_64

# --- contents ------------------------------------------------------------------------------------
expected="$TOP/
$TOP/README
$TOP/bin/
$TOP/bin/ntpfleetctl
$TOP/etc/
$TOP/etc/ntpfleet/
$TOP/etc/ntpfleet/agent.conf
$TOP/etc/ntpfleet/controller.flags
$TOP/install.sh
$TOP/sbin/
$TOP/sbin/ntpfleet-agent
$TOP/sbin/ntpfleet-controller
$TOP/share/
$TOP/share/doc/
$TOP/share/doc/ntpfleet/
$TOP/share/doc/ntpfleet/AGENT.md
$TOP/share/doc/ntpfleet/CONTROLLER.md
$TOP/share/doc/ntpfleet/DEPLOY.md
$TOP/share/doc/ntpfleet/SECURITY.md
$TOP/share/doc/ntpfleet/changelog
$TOP/share/doc/ntpfleet/copyright
$TOP/share/doc/ntpfleet/examples/
$TOP/share/doc/ntpfleet/examples/agent-client.conf
$TOP/share/doc/ntpfleet/examples/agent-server.conf
$TOP/share/man/
$TOP/share/man/man1/
$TOP/share/man/man1/ntpfleetctl.1
$TOP/share/man/man8/
$TOP/share/man/man8/ntpfleet-agent.8
$TOP/share/man/man8/ntpfleet-controller.8
$TOP/systemd/
$TOP/systemd/ntpfleet-agent.service
$TOP/systemd/ntpfleet-controller.service"
got=$(tar -tzf "$TARBALL" | sort)
if [ "$got" = "$(echo "$expected" | sort)" ]; then
  ok "the tarball holds exactly the expected $(echo "$got" | wc -l) entries under $TOP/"
else
  fail "the tarball's entries differ from the expected ones:"
  diff <(echo "$expected" | sort) <(echo "$got") | sed 's/^/    /'
fi
check "every entry owned by 0:0" bash -c "! tar -tvzf '$TARBALL' --numeric-owner | awk '{ print \$2 }' | grep -v '^0/0\$'"
mkdir -p "$WORK/x"
tar -xzf "$TARBALL" -C "$WORK/x"
X=$WORK/x/$TOP
check "install.sh and the binaries are executable" \
  test -x "$X/install.sh" -a -x "$X/sbin/ntpfleet-agent" -a -x "$X/sbin/ntpfleet-controller" -a -x "$X/bin/ntpfleetctl"

# --- the binaries in an otherwise empty root -------------------------------------------------------
for b in sbin/ntpfleet-agent sbin/ntpfleet-controller bin/ntpfleetctl; do
  check "$b is static (no interpreter, no shared library)" is_static "$X/$b"
done
E=$WORK/empty
mkdir -p "$E"
cp "$X/sbin/ntpfleet-agent" "$X/sbin/ntpfleet-controller" "$X/bin/ntpfleetctl" "$X/etc/ntpfleet/agent.conf" "$E/"
check "the empty root holds only the three binaries and agent.conf" \
  [ "$(ls -A "$E" | sort | tr '\n' ' ')" = "agent.conf ntpfleet-agent ntpfleet-controller ntpfleetctl " ]
for b in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  if out=$(chroot "$E" "/$b" --help 2>&1) && [ -n "$out" ]; then
    ok "$b --help in the empty root"
  else
    fail "$b --help in the empty root"
    echo "$out" | head -5 | sed 's/^/    /'
  fi
done
if out=$(chroot "$E" /ntpfleet-agent --check-config --config /agent.conf 2>&1) &&
  [[ "$out" == *"# ntpfleet effective configuration"* ]]; then
  ok "ntpfleet-agent --check-config in the empty root"
else
  fail "ntpfleet-agent --check-config in the empty root"
  echo "$out" | head -5 | sed 's/^/    /'
fi

# --- install.sh ----------------------------------------------------------------------------------
new_root
log "root: $ROOT"
mkdir -p "$ROOT/opt/t"
tar -xzf "$TARBALL" -C "$ROOT/opt/t"
I=/opt/t/$TOP/install.sh
# Only what the tests put there so far in the upper layer: everything else is the host's.
upper_changes() {
  (cd "$UPPER" && find . -mindepth 1 \( -path ./opt -o -path ./pkgs -o -path ./var/log -o -path ./usr/bin/systemctl \
    -o -path ./usr/sbin/policy-rc.d -o -path ./proc -o -path ./dev -o -path ./run -o -path ./tmp \) -prune -o -print |
    grep -vx -e ./var -e ./usr -e ./usr/bin -e ./usr/sbin || true)
}
before=$(upper_changes)
out=$(in_root "$I" --with-controller --replace-time-daemons --dry-run 2>&1)
check "--dry-run changes nothing (got: $(upper_changes | tr '\n' ' '))" [ "$(upper_changes)" = "$before" ]
check "--dry-run prints the actions" grep -q "^+ install -m 0755 .*/sbin/ntpfleet-agent /usr/local/sbin/ntpfleet-agent" <<<"$out"

# Into an empty directory (an image): the files, no users (there is no etc/passwd there).
mkdir -p "$ROOT/img"
if out=$(in_root "$I" --root /img --prefix /usr --with-controller 2>&1); then
  ok "install.sh --root /img --prefix /usr"
else
  fail "install.sh --root /img --prefix /usr"
  echo "$out" | sed 's/^/    /'
fi
for f in usr/sbin/ntpfleet-agent usr/sbin/ntpfleet-controller usr/bin/ntpfleetctl \
  etc/systemd/system/ntpfleet-agent.service etc/systemd/system/ntpfleet-controller.service \
  etc/ntpfleet/agent.conf etc/ntpfleet/controller.flags usr/share/man/man8/ntpfleet-agent.8 \
  usr/share/doc/ntpfleet/AGENT.md usr/share/doc/ntpfleet/examples/agent-server.conf; do
  check "--root: /img/$f" test -f "$ROOT/img/$f"
done
check "--root: says it did not create users" grep -q "not creating user ntpfleet" <<<"$out"
check "--root with --prefix /usr: ExecStart=/usr/sbin/ntpfleet-agent" \
  grep -q '^ExecStart=/usr/sbin/ntpfleet-agent ' "$ROOT/img/etc/systemd/system/ntpfleet-agent.service"

# The real thing, in the copy of this system (no systemd running).
reset_systemctl_log
if out=$(in_root "$I" --with-controller 2>&1); then
  ok "install.sh --with-controller"
else
  fail "install.sh --with-controller"
  echo "$out" | sed 's/^/    /'
fi
echo "$out" | sed 's/^/    install.sh: /'
printed() { grep -q -- "$1" <<<"$out"; }
check "it prints each action: install" printed '^+ install -m 0755 .*/sbin/ntpfleet-agent /usr/local/sbin/ntpfleet-agent'
check "it prints each action: useradd" printed '^+ useradd --system .* ntpfleet$'
check "it prints each action: chown" printed '^+ chown ntpfleet:ntpfleet /var/lib/ntpfleet$'
check "it prints each action: the unit's rewrite" printed "^+ sed .* > /etc/systemd/system/ntpfleet-agent.service"
check "/usr/local/sbin/ntpfleet-agent 0755 root" stat_is /usr/local/sbin/ntpfleet-agent 755 root:root
check "/usr/local/bin/ntpfleetctl 0755 root" stat_is /usr/local/bin/ntpfleetctl 755 root:root
check "/etc/systemd/system/ntpfleet-agent.service 0644 root" stat_is /etc/systemd/system/ntpfleet-agent.service 644 root:root
check "/etc/ntpfleet/agent.conf 0644 root" stat_is /etc/ntpfleet/agent.conf 644 root:root
check "/var/lib/ntpfleet 0755 ntpfleet" stat_is /var/lib/ntpfleet 755 ntpfleet:ntpfleet
check "/var/lib/ntpfleet-controller 0750 ntpfleet-controller" \
  stat_is /var/lib/ntpfleet-controller 750 ntpfleet-controller:ntpfleet-controller
check "user ntpfleet: system user, no login" system_user ntpfleet /var/lib/ntpfleet
check "user ntpfleet-controller: system user, no login" system_user ntpfleet-controller /var/lib/ntpfleet-controller
U=$ROOT/etc/systemd/system
check "units point at /usr/local/sbin" \
  bash -c "grep -q '^ExecStart=/usr/local/sbin/ntpfleet-agent --config /etc/ntpfleet/agent.conf\$' '$U/ntpfleet-agent.service' && grep -q '^ExecStart=/usr/local/sbin/ntpfleet-controller ' '$U/ntpfleet-controller.service'"
check "units' Documentation= points at /usr/local/share/doc/ntpfleet" \
  grep -q 'file:///usr/local/share/doc/ntpfleet/AGENT.md' "$U/ntpfleet-agent.service"
check_agent_unit "$U/ntpfleet-agent.service"
check_controller_unit "$U/ntpfleet-controller.service"
# systemd-analyze looks man pages up in the standard path: /usr/local/share/man is in it.
verify_units /etc/systemd/system/ntpfleet-agent.service /etc/systemd/system/ntpfleet-controller.service
check "nothing enabled" in_root sh -c '! ls /etc/systemd/system/multi-user.target.wants/ntpfleet-* 2>/dev/null'
check "no systemctl call without a running systemd (got: $(systemctl_calls | tr '\n' ';'))" [ -z "$(systemctl_calls)" ]
check "nothing started" nothing_running
check_binaries_run /usr/local/sbin /usr/local/bin "$VERSION" controller

# Again, over an edited configuration, on a system systemd runs, with the other daemons present.
echo "# edited" >>"$ROOT/etc/ntpfleet/agent.conf"
systemd_running yes
printf '%s\n' chronyd.service systemd-timesyncd.service >"$ROOT/var/log/systemctl.units"
reset_systemctl_log
out=$(in_root "$I" 2>&1) || fail "install.sh again: $out"
check "an edited agent.conf is kept; the shipped one goes to agent.conf.new" \
  bash -c "grep -q '# edited' '$ROOT/etc/ntpfleet/agent.conf' && test -f '$ROOT/etc/ntpfleet/agent.conf.new'"
check "without --replace-time-daemons: daemon-reload only (got: $(systemctl_calls | tr '\n' ';'))" \
  [ "$(systemctl_calls)" = daemon-reload ]
reset_systemctl_log
# The placeholder server still there: the old daemons must not be disabled (the node would be
# left with no time daemon at all).
check_not "--replace-time-daemons refuses agent.conf with the placeholder server" in_root "$I" --replace-time-daemons
check "... and disables nothing (got: $(systemctl_calls | tr '\n' ';'))" \
  bash -c "! grep -q '^disable' '$ROOT/var/log/systemctl.log'"
sed -i 's/ntp-server\.invalid/127.0.0.1/' "$ROOT/etc/ntpfleet/agent.conf"
reset_systemctl_log
out=$(in_root "$I" --replace-time-daemons 2>&1) || fail "install.sh --replace-time-daemons: $out"
check "--replace-time-daemons disables and stops chronyd and timesyncd, the ones present" \
  bash -c "grep -qx 'disable --now chronyd.service' '$ROOT/var/log/systemctl.log' && grep -qx 'disable --now systemd-timesyncd.service' '$ROOT/var/log/systemctl.log'"
check "--replace-time-daemons touches no other unit and starts nothing (got: $(systemctl_calls | grep -v list-unit-files | tr '\n' ';'))" \
  [ "$(systemctl_calls | grep -v list-unit-files | sort | tr '\n' ';')" = "daemon-reload;disable --now chronyd.service;disable --now systemd-timesyncd.service;" ]
check "it prints what it disabled" grep -q '^+ systemctl disable --now chronyd.service' <<<"$out"
cp "$ROOT/etc/ntpfleet/agent.conf.new" "$ROOT/etc/ntpfleet/agent.conf"
reset_systemctl_log
check_not "--start refuses agent.conf with the placeholder server" in_root "$I" --start
check "... and starts nothing" no_service_action
systemd_running no

reset_systemctl_log
out=$(in_root "$I" --uninstall 2>&1) || fail "install.sh --uninstall: $out"
check "--uninstall: the binaries, units, man pages and docs are gone" \
  in_root sh -c '! ls /usr/local/sbin/ntpfleet-* /usr/local/bin/ntpfleetctl /etc/systemd/system/ntpfleet-* /usr/local/share/man/man8/ntpfleet-* /usr/local/share/doc/ntpfleet 2>/dev/null'
check "--uninstall: /etc/ntpfleet, /var/lib/ntpfleet and the users stay" \
  in_root sh -c 'test -f /etc/ntpfleet/agent.conf && test -d /var/lib/ntpfleet-controller && getent passwd ntpfleet >/dev/null && getent passwd ntpfleet-controller >/dev/null'
check "nothing started" nothing_running

finish
