#!/bin/bash
# The three .deb packages, installed with dpkg -i into a throwaway copy of this Debian 12 system
# (lib.sh): their Depends resolve, the files, modes, owners, users, conffiles and units are as
# docs/INSTALL.md says, nothing is enabled or started (no systemd running; and with a systemd
# "running", policy-rc.d is honoured and a fresh install still starts nothing), an upgrade keeps
# a local edit of agent.conf, remove keeps configuration and state, purge removes them and the
# users.
#
# Usage (from Bazel): deb_test.sh VERSION_FILE PACKAGE.deb...
source "$(dirname "$0")/lib.sh"
pkgtest_init "$@"

VERSION=$(tr -d ' \n' <"$1")
AGENT=ntpfleet-agent_amd64.deb
CONTROLLER=ntpfleet-controller_amd64.deb
CTL=ntpfleetctl_amd64.deb
for p in $AGENT $CONTROLLER $CTL; do [ -n "${PKG[$p]:-}" ] || die "no $p among the arguments"; done

new_root
log "root: $ROOT"
for p in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  if in_root dpkg-query -W "$p" >/dev/null 2>&1; then die "$p is installed on this machine already"; fi
done

# --- install, with no systemd running (a chroot, an image build) -------------------------------
if out=$(in_root dpkg -i /pkgs/$AGENT /pkgs/$CONTROLLER /pkgs/$CTL 2>&1); then
  ok "dpkg -i of the three packages (their Depends are met by Debian 12's packages)"
else
  fail "dpkg -i of the three packages"
  echo "$out" | sed 's/^/    /'
  finish
  exit 1
fi
for p in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  check "$p $VERSION is installed" \
    [ "$(in_root dpkg-query -W -f='${Status} ${Version}' "$p")" = "install ok installed $VERSION" ]
done

check "/usr/sbin/ntpfleet-agent 0755 root" stat_is /usr/sbin/ntpfleet-agent 755 root:root
check "/usr/sbin/ntpfleet-controller 0755 root" stat_is /usr/sbin/ntpfleet-controller 755 root:root
check "/usr/bin/ntpfleetctl 0755 root" stat_is /usr/bin/ntpfleetctl 755 root:root
check "agent unit in /lib/systemd/system" stat_is /lib/systemd/system/ntpfleet-agent.service 644 root:root
check "controller unit in /lib/systemd/system" stat_is /lib/systemd/system/ntpfleet-controller.service 644 root:root
check "/etc/ntpfleet/agent.conf 0644 root" stat_is /etc/ntpfleet/agent.conf 644 root:root
check "/etc/ntpfleet/controller.flags 0644 root" stat_is /etc/ntpfleet/controller.flags 644 root:root
check "/etc/ntpfleet/tls 0755 root" stat_is /etc/ntpfleet/tls 755 root:root
check "/var/lib/ntpfleet 0755 ntpfleet" stat_is /var/lib/ntpfleet 755 ntpfleet:ntpfleet
check "/var/lib/ntpfleet-controller 0750 ntpfleet-controller" \
  stat_is /var/lib/ntpfleet-controller 750 ntpfleet-controller:ntpfleet-controller
for f in /usr/share/man/man8/ntpfleet-agent.8.gz /usr/share/man/man8/ntpfleet-controller.8.gz \
  /usr/share/man/man1/ntpfleetctl.1.gz /usr/share/doc/ntpfleet-agent/AGENT.md \
  /usr/share/doc/ntpfleet-agent/examples/agent-server.conf \
  /usr/share/doc/ntpfleet-controller/CONTROLLER.md /usr/share/doc/ntpfleetctl/SECURITY.md; do
  check "$f" stat_is "$f" 644 root:root
done
for p in ntpfleet-agent ntpfleet-controller ntpfleetctl; do
  check "$p: copyright and changelog.gz in /usr/share/doc/$p" \
    in_root test -f "/usr/share/doc/$p/copyright" -a -f "/usr/share/doc/$p/changelog.gz"
done

check "user ntpfleet: system user, home /var/lib/ntpfleet, no login" system_user ntpfleet /var/lib/ntpfleet
check "user ntpfleet-controller: system user, home /var/lib/ntpfleet-controller, no login" \
  system_user ntpfleet-controller /var/lib/ntpfleet-controller
check_not "ntpfleet-controller is not in group ntpfleet (it cannot read the agent's key)" \
  in_root sh -c 'id -nG ntpfleet-controller | tr " " "\\n" | grep -qx ntpfleet'
check "the agent's user may write /var/lib/ntpfleet" \
  in_root setpriv --reuid=ntpfleet --regid=ntpfleet --clear-groups touch /var/lib/ntpfleet/drift
check_not "the controller's user may not write /var/lib/ntpfleet" \
  in_root setpriv --reuid=ntpfleet-controller --regid=ntpfleet-controller --clear-groups \
  touch /var/lib/ntpfleet/x
check "the controller's user may write /var/lib/ntpfleet-controller" \
  in_root setpriv --reuid=ntpfleet-controller --regid=ntpfleet-controller --clear-groups \
  touch /var/lib/ntpfleet-controller/controller.db
check_not "the agent's user may not read /var/lib/ntpfleet-controller" \
  in_root setpriv --reuid=ntpfleet --regid=ntpfleet --clear-groups ls /var/lib/ntpfleet-controller

check "conffiles of ntpfleet-agent: /etc/ntpfleet/agent.conf" \
  [ "$(in_root dpkg-query -W -f='${Conffiles}' ntpfleet-agent | awk 'NF { print $1 }')" = /etc/ntpfleet/agent.conf ]
check "conffiles of ntpfleet-controller: /etc/ntpfleet/controller.flags" \
  [ "$(in_root dpkg-query -W -f='${Conffiles}' ntpfleet-controller | awk 'NF { print $1 }')" = /etc/ntpfleet/controller.flags ]

check_agent_unit "$ROOT/lib/systemd/system/ntpfleet-agent.service"
check_controller_unit "$ROOT/lib/systemd/system/ntpfleet-controller.service"
verify_units /lib/systemd/system/ntpfleet-agent.service /lib/systemd/system/ntpfleet-controller.service

check "not enabled: no multi-user.target.wants link for either unit" \
  in_root sh -c '! ls /etc/systemd/system/multi-user.target.wants/ntpfleet-* 2>/dev/null'
check "no systemctl call at all without a running systemd (got: $(systemctl_calls | tr '\n' ';'))" \
  [ -z "$(systemctl_calls)" ]
check "nothing started" nothing_running
check_binaries_run /usr/sbin /usr/bin "$VERSION" controller

# Installing the controller again must not touch the agent's /var/lib/ntpfleet.
in_root dpkg -i /pkgs/$CONTROLLER >/dev/null 2>&1 || fail "dpkg -i of the controller again"
check "/var/lib/ntpfleet still ntpfleet's after the controller's reinstall" \
  stat_is /var/lib/ntpfleet 755 ntpfleet:ntpfleet

# --- upgrades under a running systemd: policy-rc.d decides, a fresh install starts nothing ------
systemd_running yes
policy_rc_d deny
echo "driftfile /var/lib/ntpfleet/drift  # edited" >>"$ROOT/etc/ntpfleet/agent.conf"
reset_systemctl_log
in_root dpkg -i /pkgs/$AGENT >/dev/null 2>&1 || fail "dpkg -i of the agent over itself"
check "upgrade keeps the local edit of agent.conf" grep -q '# edited' "$ROOT/etc/ntpfleet/agent.conf"
check "upgrade under systemd: daemon-reload" grep -qx -- '--system daemon-reload' "$ROOT/var/log/systemctl.log"
check "upgrade under systemd with policy-rc.d 101: no restart (got: $(systemctl_calls | tr '\n' ';'))" \
  no_service_action
policy_rc_d none
reset_systemctl_log
in_root dpkg -i /pkgs/$AGENT >/dev/null 2>&1 || fail "dpkg -i of the agent over itself"
# The same upgrade without policy-rc.d does ask for the restart: so the policy was what stopped it.
check "upgrade under systemd without policy-rc.d: try-restart (only if running)" \
  grep -q 'try-restart ntpfleet-agent.service' "$ROOT/var/log/systemctl.log"
check_not "... and never a plain start" grep -Eq '(^| )(start|restart) ' "$ROOT/var/log/systemctl.log"
policy_rc_d deny
reset_systemctl_log
in_root dpkg -r ntpfleetctl >/dev/null 2>&1 || fail "dpkg -r ntpfleetctl"
in_root dpkg -i /pkgs/$CTL >/dev/null 2>&1 || fail "dpkg -i ntpfleetctl"
check "ntpfleetctl's install under systemd calls no systemctl" [ -z "$(systemctl_calls)" ]
check "still nothing enabled" \
  in_root sh -c '! ls /etc/systemd/system/multi-user.target.wants/ntpfleet-* 2>/dev/null'
check "still nothing started" nothing_running
systemd_running no
policy_rc_d none

# --- remove: configuration and state stay -------------------------------------------------------
reset_systemctl_log
check "dpkg -r ntpfleet-agent" in_root dpkg -r ntpfleet-agent
check "remove: the binary and unit are gone" \
  in_root sh -c '! test -e /usr/sbin/ntpfleet-agent && ! test -e /lib/systemd/system/ntpfleet-agent.service'
check "remove: agent.conf, the drift file and user ntpfleet stay" \
  in_root sh -c 'test -f /etc/ntpfleet/agent.conf && test -f /var/lib/ntpfleet/drift && getent passwd ntpfleet >/dev/null'
check "remove without systemd: no systemctl call" [ -z "$(systemctl_calls)" ]

# --- purge: the agent's state and user go; the controller's stay --------------------------------
check "dpkg -P ntpfleet-agent" in_root dpkg -P ntpfleet-agent
check "purge: agent.conf, the drift file, user and group ntpfleet are gone" \
  in_root sh -c '! test -e /etc/ntpfleet/agent.conf && ! test -e /var/lib/ntpfleet/drift && ! getent passwd ntpfleet && ! getent group ntpfleet'
check "purge of the agent leaves the controller's database" \
  stat_is /var/lib/ntpfleet-controller/controller.db 644 ntpfleet-controller:ntpfleet-controller
check "purge of the agent removes /var/lib/ntpfleet" in_root sh -c '! test -e /var/lib/ntpfleet'
check "dpkg -P ntpfleet-controller ntpfleetctl" in_root dpkg -P ntpfleet-controller ntpfleetctl
check "purge: /var/lib/ntpfleet-controller, /etc/ntpfleet and user ntpfleet-controller are gone" \
  in_root sh -c '! test -e /var/lib/ntpfleet-controller && ! test -e /etc/ntpfleet && ! getent passwd ntpfleet-controller && ! getent group ntpfleet-controller'
check "purge: no unit, no enablement state left" \
  in_root sh -c '! ls /lib/systemd/system/ntpfleet-* /etc/systemd/system/ntpfleet-* /var/lib/systemd/deb-systemd-helper-enabled/ntpfleet-* 2>/dev/null'
check "nothing started" nothing_running

finish
