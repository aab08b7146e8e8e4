#!/usr/bin/env bash
# deploy/prometheus/alerts.yml and deploy/grafana/ntpfleet.json with the real promtool (Debian's
# prometheus package, unpacked by scripts/fetch_tools.sh, never installed, never started):
#   1. `promtool check rules alerts.yml`: the rules parse, their PromQL is valid;
#   2. `promtool test rules alerts_test.yml`: each alert fires when it should and stays silent
#      otherwise (synthetic series);
#   3. every PromQL query of the dashboard, with Grafana's variables put in, checked the same way
#      (as recording rules), so a typo in a panel fails here and not in front of an operator.
# Whether the metric names they use exist is checked against a served page by
# tests/controller:metrics_scrape_test.
#
# A missing promtool FAILS the test (never skips) with how to fetch it.
#
#   rules_test.sh ALERTS_YML ALERTS_TEST_YML DASHBOARD_JSON
set -euo pipefail

ALERTS=$1 ALERTS_TEST=$2 DASHBOARD=$3
TOOLS="${NTPFLEET_TOOLS_DIR:-/var/cache/ntpfleet/tools}"
PROMTOOL="$TOOLS/bin/promtool"
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$PROMTOOL" ] || fail "promtool is missing ($PROMTOOL).
Fetch it (Debian's prometheus package, unpacked, not installed): sudo scripts/fetch_tools.sh
Elsewhere: NTPFLEET_TOOLS_DIR=/path scripts/fetch_tools.sh, then run bazel test with the same
NTPFLEET_TOOLS_DIR in its environment (this test inherits it)."
echo "promtool: $("$PROMTOOL" --version 2>&1 | head -n 1)"

work="${TEST_TMPDIR:-$(mktemp -d)}/rules"
rm -rf "$work" && mkdir -p "$work"
# promtool test rules finds rule_files relative to the test file: keep them side by side.
cp "$ALERTS" "$work/alerts.yml"
cp "$ALERTS_TEST" "$work/alerts_test.yml"

"$PROMTOOL" check rules "$work/alerts.yml" || fail "promtool check rules $ALERTS"
(cd "$work" && "$PROMTOOL" test rules alerts_test.yml) || fail "promtool test rules $ALERTS_TEST"

# The dashboard's queries as recording rules: Grafana's $__interval-style variables become a
# duration, the template variables (inside label matchers) a regex.
/usr/bin/python3 - "$DASHBOARD" "$work/dashboard_rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
walk(dashboard["panels"])
for v in dashboard["templating"]["list"]:
    if v["type"] == "query":
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        # label_values(METRIC_SELECTOR, label): the selector is PromQL.
        inner = q[len("label_values("):q.rindex(",")]
        exprs.append(("variable " + v["name"], inner))
if not exprs:
    sys.exit("the dashboard has no queries")
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        e = (e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
              .replace("$__range", "1h").replace("$job", ".*").replace("$instance", ".*")
              .replace("$node", ".*"))
        assert "$" not in e, "%s: unknown variable in %s" % (title, e)
        out.write("      - record: dashboard:query%d\n        expr: %s\n" % (i, json.dumps(e)))
print("dashboard: %d queries" % len(exprs))
PY
"$PROMTOOL" check rules "$work/dashboard_rules.yml" || fail "a query of $DASHBOARD is not valid PromQL"
echo "PASS"
