#!/usr/bin/python3
"""/metrics as Prometheus reads it.

Starts metrics_fixture (a ControllerCore over a real Registry and Store with nodes connected,
stale, disconnected, known only from the inventory, unsynchronised and duplicated; the page served
exactly as ntpfleet-controller serves it), scrapes /metrics over HTTP on 127.0.0.1 and parses it
with Prometheus' own Python parser (Debian's python3-prometheus-client,
prometheus_client.parser.text_string_to_metric_families). Then checks what the page promises in
docs/CONTROLLER.md: per-node series for every known node with ntpfleet_node_up 0 when not
reporting, base units, connection and flag counted apart, escaped label values, build info, no
series twice, HELP and TYPE for every family; and that every metric name that
deploy/prometheus/alerts.yml and deploy/grafana/ntpfleet.json use is one the page has.

  metrics_scrape_test.py FIXTURE VERSION_FILE ALERTS_YML DASHBOARD_JSON

Runs with Debian's /usr/bin/python3 (scripts/setup.sh installs python3-prometheus-client for it).
"""
import json
import math
import os
import re
import subprocess
import sys
import unittest
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

FIXTURE, VERSION_FILE, ALERTS, DASHBOARD = sys.argv[1:5]


class MetricsScrapeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        db = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "metrics_scrape.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        cls.proc = subprocess.Popen([FIXTURE, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = cls.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            cls.proc.kill()
            raise AssertionError("metrics_fixture did not print its port (got %r)" % line)
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % line, timeout=10) as r:
            cls.content_type = r.headers.get("Content-Type")
            cls.page = r.read().decode("utf-8")
        cls.families = list(text_string_to_metric_families(cls.page))
        cls.by_name = {f.name: f for f in cls.families}
        cls.samples = [s for f in cls.families for s in f.samples]

    @classmethod
    def tearDownClass(cls):
        cls.proc.stdin.close()
        cls.proc.wait(timeout=10)

    def value(self, name, **labels):
        """The value of the one sample `name` with exactly `labels`."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        self.assertEqual(len(found), 1, "%s%s: %d samples" % (name, labels, len(found)))
        return found[0]

    def node_samples(self, name, node):
        return [s for s in self.samples if s.name == name and s.labels.get("node") == node]

    def test_content_type_is_text_format_0_0_4(self):
        self.assertEqual(self.content_type, "text/plain; version=0.0.4; charset=utf-8")

    def test_every_family_once_with_help_and_type(self):
        names = [f.name for f in self.families]
        self.assertEqual(len(names), len(set(names)), "a family split in two groups")
        for f in self.families:
            self.assertIn(f.type, ("gauge", "counter"), f.name)
            self.assertTrue(f.documentation, "%s has no HELP" % f.name)
            self.assertTrue(f.name.startswith("ntpfleet_"), f.name)

    def test_no_series_twice(self):
        keys = [(s.name, tuple(sorted(s.labels.items()))) for s in self.samples]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        self.assertEqual(dupes, [])

    def test_build_info(self):
        with open(VERSION_FILE) as f:
            version = f.read().strip()
        self.assertEqual(self.value("ntpfleet_build_info", version=version), 1)

    def test_node_up_for_every_known_node(self):
        # The old page had no series at all for db-2 and web-1 (disconnected), so no
        # per-node alert could fire for them.
        self.assertEqual(self.value("ntpfleet_node_up", node="db-1"), 1)
        self.assertEqual(self.value("ntpfleet_node_up", node="cache-1"), 1)
        self.assertEqual(self.value("ntpfleet_node_up", node="db-2"), 0)  # disconnected
        self.assertEqual(self.value("ntpfleet_node_up", node="web-1"), 0)  # inventory only
        self.assertEqual(self.value("ntpfleet_node_up", node="web-2"), 0)  # stale

    def test_disconnected_node_keeps_its_last_values(self):
        self.assertAlmostEqual(self.value("ntpfleet_node_offset_seconds", node="db-2"), 30e-6)
        self.assertAlmostEqual(self.value("ntpfleet_node_frequency_ratio", node="db-2"), 7.25e-6)
        self.assertEqual(self.value("ntpfleet_node_last_seen_timestamp_seconds", node="db-2"),
                         1700000000)
        self.assertEqual(self.value("ntpfleet_node_sync_state", node="db-2",
                                    state="synchronised"), 1)

    def test_inventory_only_node_has_no_made_up_status(self):
        self.assertEqual(self.value("ntpfleet_node_last_seen_timestamp_seconds", node="web-1"),
                         1699990000)
        self.assertEqual(len(self.node_samples("ntpfleet_node_info", "web-1")), 1)
        self.assertEqual(self.node_samples("ntpfleet_node_offset_seconds", "web-1"), [])
        self.assertEqual(self.node_samples("ntpfleet_node_sync_state", "web-1"), [])

    def test_base_units(self):
        self.assertAlmostEqual(self.value("ntpfleet_node_frequency_ratio", node="db-1"), 12.5e-6)
        self.assertAlmostEqual(self.value("ntpfleet_node_offset_seconds", node="db-1"), 12e-6)
        self.assertAlmostEqual(self.value("ntpfleet_node_error_bound_seconds", node="db-1"),
                               340e-6)
        self.assertAlmostEqual(self.value("ntpfleet_node_root_delay_seconds", node="db-1"),
                               1.5e-3)
        self.assertAlmostEqual(self.value("ntpfleet_node_root_dispersion_seconds", node="db-1"),
                               250e-6)
        self.assertEqual(self.value("ntpfleet_node_leap_indicator", node="db-1"), 0)
        self.assertEqual(self.value("ntpfleet_node_stratum", node="db-1"), 3)
        self.assertAlmostEqual(self.value("ntpfleet_fleet_skew_threshold_seconds"), 1e-3)
        # Names say their unit: a base unit suffix, or a count/state without unit.
        unitless = {"ntpfleet_node_up", "ntpfleet_node_info", "ntpfleet_node_flagged",
                    "ntpfleet_node_sync_state", "ntpfleet_node_stratum",
                    "ntpfleet_node_leap_indicator", "ntpfleet_build_info", "ntpfleet_nodes",
                    "ntpfleet_nodes_flagged", "ntpfleet_controller_insecure",
                    "ntpfleet_node_crosscheck_flagged", "ntpfleet_crosscheck_flagged_nodes",
                    "ntpfleet_controller_store_queue"}
        for f in self.families:
            if f.type == "counter" or f.name in unitless:
                continue
            self.assertRegex(f.name, r"_(seconds|ratio)$", "%s: not in a base unit" % f.name)
        self.assertNotIn("_ppm", self.page)

    def test_unsynchronised_node(self):
        self.assertEqual(self.value("ntpfleet_node_sync_state", node="cache-1",
                                    state="unsynchronised"), 1)
        self.assertTrue(math.isinf(self.value("ntpfleet_node_error_bound_seconds",
                                              node="cache-1")))
        self.assertEqual(self.value("ntpfleet_node_leap_indicator", node="cache-1"), 3)

    def test_connection_and_flags_are_separate_dimensions(self):
        nodes = [s for s in self.samples if s.name == "ntpfleet_nodes"]
        self.assertEqual({tuple(s.labels) for s in nodes}, {("connection",)})
        counts = {s.labels["connection"]: s.value for s in nodes}
        # db-1, cache-1 and the two dup entries; web-2; db-2 and web-1.
        self.assertEqual(counts, {"connected": 4, "stale": 1, "disconnected": 2})
        self.assertEqual(sum(counts.values()),
                         len([s for s in self.samples if s.name == "ntpfleet_node_up"]))
        self.assertIn("ntpfleet_nodes_flagged", self.by_name)

    def test_label_values_read_back_as_sent(self):
        info = self.node_samples("ntpfleet_node_info", "db-1")
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0].labels["agent_version"], '0.1.0 "lab" C:\\agent')
        self.assertEqual(info[0].labels["role"], "client")
        self.assertEqual(info[0].labels["config_digest"], "c" * 64)

    def test_duplicate_names_are_told_apart_by_peer(self):
        up = self.node_samples("ntpfleet_node_up", "dup")
        self.assertEqual(sorted(s.labels.get("peer") for s in up),
                         ["ipv4:127.0.0.1:41001", "ipv4:127.0.0.1:41002"])

    def test_resync_and_store_counters_exist_from_the_start(self):
        self.assertEqual(self.value("ntpfleet_resync_requests_total"), 0)
        self.assertEqual(self.value("ntpfleet_resync_node_results_total", outcome="ok"), 0)
        self.assertIn("ntpfleet_controller_store_writes", self.by_name)

    def test_crosscheck(self):
        # The fixture's mesh: db-1, web-2 and cache-1 probe each other; db-1 is the only judged
        # node (web-2 is STALE, cache-1 has no bound), so the median gauge puts it at its report.
        self.assertAlmostEqual(
            self.value("ntpfleet_node_crosscheck_measured_offset_seconds", node="db-1"), 12e-6)
        self.assertAlmostEqual(
            self.value("ntpfleet_node_crosscheck_disagreement_seconds", node="db-1"), 0)
        self.assertEqual(self.value("ntpfleet_node_crosscheck_flagged", node="db-1"), 0)
        self.assertEqual(self.node_samples("ntpfleet_node_crosscheck_flagged", "web-1"), [])
        self.assertEqual(self.value("ntpfleet_crosscheck_flagged_nodes"), 0)
        # web-2 at -20 us, cache-1 at 0, db-1 at 12 us: pairs 12, 20, 32 us.
        self.assertAlmostEqual(self.value("ntpfleet_mesh_skew_seconds", quantile="1"), 32e-6)
        self.assertAlmostEqual(self.value("ntpfleet_mesh_skew_seconds", quantile="0.5"), 20e-6)
        self.assertAlmostEqual(self.value("ntpfleet_mesh_skew_seconds", quantile="0.99"), 32e-6)
        # db-1 and the two dup entries, each 340 us, are counted in the skew: the two largest added.
        self.assertAlmostEqual(self.value("ntpfleet_fleet_bound_seconds"), 680e-6)
        self.assertEqual(self.value("ntpfleet_crosscheck_probe_reports_dropped_total",
                                    reason="unassigned_target"), 1)
        self.assertEqual(self.value("ntpfleet_crosscheck_probe_reports_dropped_total",
                                    reason="too_many_results"), 0)

    def test_rules_and_dashboard_use_only_exported_metrics(self):
        exported = {s.name for s in self.samples} | set(self.by_name)
        exported |= {f.name + "_total" for f in self.families if f.type == "counter"}
        with open(DASHBOARD) as f:
            dashboard_text = f.read()
        dashboard = json.loads(dashboard_text)
        self.assertEqual(dashboard["templating"]["list"][0]["name"], "DS_PROMETHEUS")
        for source, text in ((ALERTS, open(ALERTS).read()), (DASHBOARD, dashboard_text)):
            used = set(re.findall(r"\bntpfleet_[a-z0-9_]+", text))
            self.assertTrue(used, "%s names no ntpfleet metric" % source)
            self.assertEqual(sorted(used - exported), [],
                             "%s uses metrics the controller does not export" % source)
        # Every query panel reads the datasource variable, never a fixed datasource.
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            self.assertEqual(panel["datasource"], {"type": "prometheus",
                                                   "uid": "${DS_PROMETHEUS}"}, panel["title"])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
