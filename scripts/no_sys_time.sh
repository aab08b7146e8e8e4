# Sourced by scripts that run Bazel or the programs (test.sh, package.sh): as root with
# CAP_SYS_TIME in the bounding set, re-executes the calling script without it, so that nothing
# it starts can move this machine's clock.
#   source "$(dirname "$0")/no_sys_time.sh"; reexec_without_sys_time "$0" "$@"
cap_sys_time_bounded() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (0x$bnd >> 25) & 1 ))
}
reexec_without_sys_time() {
  if [ "$(id -u)" = 0 ] && cap_sys_time_bounded && [ -z "${NTPFLEET_NO_SYS_TIME:-}" ]; then
    NTPFLEET_NO_SYS_TIME=1 exec setpriv --inh-caps=-sys_time --bounding-set=-sys_time -- "$@"
  fi
}
