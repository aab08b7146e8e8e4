#!/bin/sh
# run any daemon/tool with CAP_SYS_TIME removed from inheritable + bounding sets
exec setpriv --inh-caps=-sys_time --bounding-set=-sys_time "$@"
