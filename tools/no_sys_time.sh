#!/bin/sh
# Runs "$@" unable to set the clock: CAP_SYS_TIME is removed from the bounding and inheritable
# sets (needs root, as in CI). A non-root user has no CAP_SYS_TIME to start with; there we set
# no_new_privs so that no file capability can grant it either.
if [ "$(id -u)" = 0 ]; then
  exec setpriv --inh-caps=-sys_time --bounding-set=-sys_time -- "$@"
fi
exec setpriv --no-new-privs -- "$@"
