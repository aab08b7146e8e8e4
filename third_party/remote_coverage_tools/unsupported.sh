#!/bin/sh
echo "coverage is not supported in ntpfleet's offline Bazel build" >&2
exit 1
