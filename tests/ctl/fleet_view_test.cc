// Tests for ctl/fleet_view.h: the filters, the sort keys, and the outputs
// (table header, wide, csv quoting, json compatibility).
#include "ctl/fleet_view.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/ntpfleet.pb.h"
#include "tests/ctl/test_fleet.h"
#include "tests/testing/status_matchers.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::ctl::testing::AddNode;
using ::ntpfleet::ctl::testing::Bound;
using ::ntpfleet::ctl::testing::Connection;
using ::ntpfleet::ctl::testing::Digest;
using ::ntpfleet::ctl::testing::Flagged;
using ::ntpfleet::ctl::testing::kNow;
using ::ntpfleet::ctl::testing::Label;
using ::ntpfleet::ctl::testing::Measured;
using ::ntpfleet::ctl::testing::NoReport;
using ::ntpfleet::ctl::testing::Offset;
using ::ntpfleet::ctl::testing::Role;
using ::ntpfleet::ctl::testing::SeenAgo;
using ::ntpfleet::ctl::testing::SetFleetHeader;
using ::ntpfleet::ctl::testing::State;
using ::ntpfleet::testing::IsOk;
using ::ntpfleet::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

// Six nodes, one of each kind a filter tells apart:
//   web-1   rack=a1 zone=x  synchronised  -300 µs  bound 400 µs  seen 1 s ago
//   web-2   rack=a1 zone=y  synchronised  +900 µs  bound 2 ms     seen 3 s ago
//   db-1    rack=b2         flagged       +1.5 ms  bound 1.7 ms   seen 2 s ago
//   db-2    rack=b2         holdover      +50 µs   bound 5 ms     seen 1 s ago
//   cache-1 rack=a1         STALE         -20 µs   bound 300 µs   seen 5 min
//   ago batch-7                 DISCONNECTED  no report               seen 2 d
//   ago ntp     role server     local clock   +0       bound local    seen 1 s
//   ago
v1::Fleet TestFleet() {
  v1::Fleet f;
  Label(Label(Bound(Offset(AddNode(&f, "web-1"), absl::Microseconds(-300)),
                    absl::Microseconds(400)),
              "rack", "a1"),
        "zone", "x");
  SeenAgo(
      Label(Label(Bound(Offset(AddNode(&f, "web-2"), absl::Microseconds(900)),
                        absl::Milliseconds(2)),
                  "rack", "a1"),
            "zone", "y"),
      absl::Seconds(3));
  SeenAgo(
      Flagged(Label(Bound(Offset(AddNode(&f, "db-1"), absl::Microseconds(1500)),
                          absl::Microseconds(1700)),
                    "rack", "b2")),
      absl::Seconds(2));
  State(Label(Bound(Offset(AddNode(&f, "db-2"), absl::Microseconds(50)),
                    absl::Milliseconds(5)),
              "rack", "b2"),
        v1::SYNC_STATE_HOLDOVER);
  SeenAgo(
      Connection(
          Label(Bound(Offset(AddNode(&f, "cache-1"), absl::Microseconds(-20)),
                      absl::Microseconds(300)),
                "rack", "a1"),
          v1::CONNECTION_STATE_STALE),
      absl::Minutes(5));
  SeenAgo(NoReport(Connection(AddNode(&f, "batch-7"),
                              v1::CONNECTION_STATE_DISCONNECTED)),
          absl::Hours(48));
  v1::Node* ntp = State(Role(AddNode(&f, "ntp"), v1::ROLE_SERVER),
                        v1::SYNC_STATE_LOCAL_CLOCK);
  ntp->mutable_status()->set_error_bound_local(true);
  SetFleetHeader(&f, absl::Microseconds(1800));
  return f;
}

std::vector<std::string> Names(const std::vector<const v1::Node*>& nodes) {
  std::vector<std::string> names;
  for (const v1::Node* n : nodes) names.push_back(n->name());
  return names;
}

std::vector<std::string> Select(const v1::Fleet& fleet,
                                std::vector<std::string> labels,
                                std::vector<std::string> states,
                                std::vector<std::string> globs,
                                SortKey key = SortKey::kName) {
  absl::StatusOr<NodeFilter> filter = ParseNodeFilter(labels, states, globs);
  EXPECT_THAT(filter, IsOk());
  if (!filter.ok()) return {};
  return Names(SelectNodes(fleet, *filter, key));
}

RenderOptions Plain() {
  RenderOptions r;
  r.now = kNow;
  return r;
}

// --- Parsing the flags ------------------------------------------------------

TEST(ParseTest, OutputFormatsAndSortKeys) {
  EXPECT_THAT(ParseOutputFormat("table"),
              ::ntpfleet::testing::IsOkAndHolds(OutputFormat::kTable));
  EXPECT_THAT(ParseOutputFormat("text"),
              ::ntpfleet::testing::IsOkAndHolds(OutputFormat::kTable));
  EXPECT_THAT(ParseOutputFormat("wide"),
              ::ntpfleet::testing::IsOkAndHolds(OutputFormat::kWide));
  EXPECT_THAT(ParseOutputFormat("csv"),
              ::ntpfleet::testing::IsOkAndHolds(OutputFormat::kCsv));
  EXPECT_THAT(ParseOutputFormat("yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("`wide`, `json` or `csv`, not `yaml`")));
  EXPECT_THAT(ParseSortKey("last-seen"),
              ::ntpfleet::testing::IsOkAndHolds(SortKey::kLastSeen));
  EXPECT_THAT(ParseSortKey("bound"),
              ::ntpfleet::testing::IsOkAndHolds(SortKey::kBound));
  EXPECT_THAT(ParseSortKey("age"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("`age`")));
}

TEST(ParseTest, StatesAreCommaListsOrRepeatedAndUnknownOnesListTheKnown) {
  absl::StatusOr<std::vector<StateName>> states =
      ParseStates({"stale,disconnected", "flagged", "stale"});
  ASSERT_THAT(states, IsOk());
  EXPECT_THAT(*states, ElementsAre(StateName::kStale, StateName::kDisconnected,
                                   StateName::kFlagged));
  EXPECT_THAT(
      ParseStates({"connected,stail"}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::AllOf(HasSubstr("`stail`"), HasSubstr("unhealthy"),
                                HasSubstr("local-clock"))));
  // Every word reads back as its own state.
  for (StateName s :
       {StateName::kConnected, StateName::kStale, StateName::kDisconnected,
        StateName::kSynchronised, StateName::kSyncing,
        StateName::kUnsynchronised, StateName::kHoldover,
        StateName::kLocalClock, StateName::kRefused, StateName::kNoReport,
        StateName::kFlagged, StateName::kDuplicate, StateName::kHealthy,
        StateName::kUnhealthy}) {
    EXPECT_THAT(ParseStates({std::string(StateWord(s))}),
                ::ntpfleet::testing::IsOkAndHolds(ElementsAre(s)));
  }
}

TEST(ParseTest, LabelsMustBeKeyEqualsValue) {
  EXPECT_THAT(ParseNodeFilter({"rack"}, {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("`rack` is not KEY=VALUE")));
  EXPECT_THAT(ParseNodeFilter({"=a1"}, {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("=a1")));
  EXPECT_THAT(ParseNodeFilter({}, {}, {""}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("empty node name pattern")));
  // A value may hold '=' and may be empty.
  absl::StatusOr<NodeFilter> f = ParseNodeFilter({"k=a=b", "e="}, {}, {});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->labels[0].first, "k");
  EXPECT_EQ(f->labels[0].second, "a=b");
  EXPECT_EQ(f->labels[1].second, "");
  EXPECT_FALSE(ParseNodeFilter({}, {}, {})->active());
  EXPECT_EQ(ParseNodeFilter({"rack=a1"}, {"stale,disconnected"}, {"web-*"})
                ->Describe(),
            "label rack=a1, state stale|disconnected, name web-*");
}

// --- Filters ----------------------------------------------------------------

TEST(FilterTest, EveryLabelMustMatch) {
  const v1::Fleet f = TestFleet();
  EXPECT_THAT(Select(f, {"rack=a1"}, {}, {}),
              ElementsAre("cache-1", "web-1", "web-2"));
  EXPECT_THAT(Select(f, {"rack=a1", "zone=y"}, {}, {}), ElementsAre("web-2"));
  EXPECT_THAT(Select(f, {"rack=a1", "zone=z"}, {}, {}), IsEmpty());
  // A label the node does not have never matches, not even with an empty
  // value.
  EXPECT_THAT(Select(f, {"zone="}, {}, {}), IsEmpty());
}

TEST(FilterTest, AnyStateMatches) {
  const v1::Fleet f = TestFleet();
  EXPECT_THAT(Select(f, {}, {"stale", "disconnected"}, {}),
              ElementsAre("batch-7", "cache-1"));
  EXPECT_THAT(Select(f, {}, {"flagged"}, {}), ElementsAre("db-1"));
  EXPECT_THAT(Select(f, {}, {"holdover,local-clock"}, {}),
              ElementsAre("db-2", "ntp"));
  EXPECT_THAT(Select(f, {}, {"no-report"}, {}), ElementsAre("batch-7"));
  // The sync state of a stale node's last report still counts.
  EXPECT_THAT(Select(f, {}, {"synchronised"}, {}),
              ElementsAre("cache-1", "db-1", "web-1", "web-2"));
  // Unhealthy: stale, disconnected, flagged, connected and not synchronised
  // (db-2 in holdover). The server on its local clock is healthy.
  EXPECT_THAT(Select(f, {}, {"unhealthy"}, {}),
              ElementsAre("batch-7", "cache-1", "db-1", "db-2"));
  EXPECT_THAT(Select(f, {}, {"healthy"}, {}),
              ElementsAre("ntp", "web-1", "web-2"));
}

TEST(FilterTest, NameGlobsAnyOneMatches) {
  const v1::Fleet f = TestFleet();
  EXPECT_THAT(Select(f, {}, {}, {"web-*"}), ElementsAre("web-1", "web-2"));
  EXPECT_THAT(Select(f, {}, {}, {"db-[2-9]", "ntp"}),
              ElementsAre("db-2", "ntp"));
  EXPECT_THAT(Select(f, {}, {}, {"web"}), IsEmpty());  // a glob, not a prefix
  EXPECT_THAT(
      Select(f, {}, {}, {"*-?"}),
      ElementsAre("batch-7", "cache-1", "db-1", "db-2", "web-1", "web-2"));
}

TEST(FilterTest, DifferentFiltersMustAllMatch) {
  const v1::Fleet f = TestFleet();
  EXPECT_THAT(Select(f, {"rack=a1"}, {"stale,flagged"}, {}),
              ElementsAre("cache-1"));
  EXPECT_THAT(Select(f, {"rack=b2"}, {"unhealthy"}, {"*-2"}),
              ElementsAre("db-2"));
}

TEST(NotSynchronisedTest, OnlyConnectedNodesThatDoNotKeepTime) {
  v1::Fleet f;
  v1::Node* synced = AddNode(&f, "synced");
  v1::Node* syncing = State(AddNode(&f, "syncing"), v1::SYNC_STATE_SYNCING);
  v1::Node* unsynced =
      State(AddNode(&f, "unsynced"), v1::SYNC_STATE_UNSYNCHRONISED);
  v1::Node* refused = State(AddNode(&f, "refused"), v1::SYNC_STATE_REFUSED);
  v1::Node* holdover = State(AddNode(&f, "holdover"), v1::SYNC_STATE_HOLDOVER);
  v1::Node* client_local =
      State(AddNode(&f, "client-local"), v1::SYNC_STATE_LOCAL_CLOCK);
  v1::Node* server_local =
      State(Role(AddNode(&f, "server-local"), v1::ROLE_SERVER),
            v1::SYNC_STATE_LOCAL_CLOCK);
  v1::Node* silent = NoReport(AddNode(&f, "silent"));
  v1::Node* stale_holdover =
      Connection(State(AddNode(&f, "stale"), v1::SYNC_STATE_HOLDOVER),
                 v1::CONNECTION_STATE_STALE);
  EXPECT_FALSE(NotSynchronised(*synced));
  EXPECT_FALSE(NotSynchronised(*syncing));
  EXPECT_TRUE(NotSynchronised(*unsynced));
  EXPECT_TRUE(NotSynchronised(*refused));
  EXPECT_TRUE(NotSynchronised(*holdover));
  EXPECT_TRUE(NotSynchronised(*client_local));
  EXPECT_FALSE(NotSynchronised(*server_local));
  EXPECT_TRUE(NotSynchronised(*silent));
  EXPECT_FALSE(NotSynchronised(*stale_holdover));  // the stale rule's
}

// --- Sorting ----------------------------------------------------------------

TEST(SortTest, EachKeyWorstFirst) {
  const v1::Fleet f = TestFleet();
  // |offset|: 1.5 ms, 900, 300, 50, 20, 0 µs; no report last.
  EXPECT_THAT(Select(f, {}, {}, {}, SortKey::kOffset),
              ElementsAre("db-1", "web-2", "web-1", "db-2", "cache-1", "ntp",
                          "batch-7"));
  // Bound: 5 ms, 2 ms, 1.7 ms, 400, 300 µs; a local bound and none last (by
  // name).
  EXPECT_THAT(Select(f, {}, {}, {}, SortKey::kBound),
              ElementsAre("db-2", "web-2", "db-1", "web-1", "cache-1",
                          "batch-7", "ntp"));
  EXPECT_THAT(Select(f, {}, {}, {}, SortKey::kName),
              ElementsAre("batch-7", "cache-1", "db-1", "db-2", "ntp", "web-1",
                          "web-2"));
  // Longest silent first: 2 d, 5 min, 3 s, 2 s, then the 1 s ones by name.
  EXPECT_THAT(Select(f, {}, {}, {}, SortKey::kLastSeen),
              ElementsAre("batch-7", "cache-1", "web-2", "db-1", "db-2", "ntp",
                          "web-1"));
}

TEST(SortTest, NeverSeenIsTheLongestSilent) {
  v1::Fleet f;
  AddNode(&f, "a");
  AddNode(&f, "b")->clear_last_seen();
  EXPECT_THAT(Select(f, {}, {}, {}, SortKey::kLastSeen), ElementsAre("b", "a"));
}

// --- Table and wide
// -----------------------------------------------------------

TEST(StatusViewTest, FilteredTableKeepsTheFleetLinesAndSaysHowManyAreShown) {
  const v1::Fleet f = TestFleet();
  ViewOptions view;
  view.filter = *ParseNodeFilter({"rack=a1"}, {}, {});
  absl::StatusOr<std::string> text = RenderStatusView(f, view, Plain());
  ASSERT_THAT(text, IsOk());
  const std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  ASSERT_GE(lines.size(), 8u);
  // The fleet's skew and counts, as without a filter.
  EXPECT_EQ(lines[0],
            "fleet skew 1.800ms (threshold 1.000ms), max error bound 100µs");
  EXPECT_EQ(lines[1],
            "7 nodes: 5 connected, 1 stale, 1 flagged, 0 duplicate names");
  EXPECT_EQ(lines[2], "3 of 7 nodes shown (label rack=a1)");
  EXPECT_EQ(lines[3], "");
  EXPECT_THAT(lines[4], StartsWith("NODE"));
  // By |offset|: web-2, web-1, cache-1.
  EXPECT_THAT(lines[5], StartsWith("web-2 "));
  EXPECT_THAT(lines[6], StartsWith("web-1 "));
  EXPECT_THAT(lines[7], StartsWith("cache-1 "));
  EXPECT_EQ(lines[8], "");
  EXPECT_THAT(*text, Not(HasSubstr("db-1")));

  // Unfiltered: exactly the table RenderFleetStatus has always printed.
  EXPECT_EQ(*RenderStatusView(f, ViewOptions{}, Plain()),
            RenderFleetStatus(f, Plain()));
}

TEST(StatusViewTest, NoMatchSaysSo) {
  ViewOptions view;
  view.filter = *ParseNodeFilter({}, {}, {"nothing-*"});
  EXPECT_THAT(*RenderStatusView(TestFleet(), view, Plain()),
              HasSubstr("0 of 7 nodes shown (name nothing-*)\n\nno node "
                        "matches\n"));
}

TEST(StatusViewTest, WideAddsTheHellosColumns) {
  v1::Fleet f;
  v1::Node* n = Digest(Label(AddNode(&f, "web-1"), "rack", "a1"),
                       "0123456789abcdef0123456789abcdef");
  n->mutable_hello()->set_agent_version("0.9.1");
  n->mutable_hello()->add_addresses("10.0.0.7");
  n->mutable_hello()->add_addresses("fd00::7");
  Label(n, "zone", "x");
  AddNode(&f, "web-2");  // as a summary would have it: no digest, no address
  SetFleetHeader(&f, absl::ZeroDuration());
  ViewOptions view;
  view.output = OutputFormat::kWide;
  view.sort = SortKey::kName;
  const std::string text = *RenderStatusView(f, view, Plain());
  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  ASSERT_GE(lines.size(), 6u);
  EXPECT_THAT(lines[3],
              HasSubstr("  LAST SEEN  ROLE    VERSION  ADDRESSES    "
                        "     LABELS          DIGEST        MEASURED  DISAGREE"
                        "  FLAGS"));
  EXPECT_THAT(lines[4],
              HasSubstr("client  0.9.1    10.0.0.7,fd00::7  rack=a1,zone=x  "
                        "0123456789ab"));
  EXPECT_THAT(lines[4], Not(HasSubstr("0123456789abc")));  // 12 digits
  EXPECT_THAT(lines[5], HasSubstr("client  -        -                 -    "));
}

// --- CSV
// ----------------------------------------------------------------------

TEST(CsvTest, FieldsAreQuotedOnlyWhenRfc4180NeedsIt) {
  EXPECT_EQ(CsvField("web-1"), "web-1");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("cr\r"), "\"cr\r\"");
  EXPECT_EQ(CsvField("'single' ok"), "'single' ok");
}

// A minimal RFC 4180 reader, to read back what RenderCsv wrote.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (c == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
    } else {
      field.push_back(c);
    }
  }
  rows.pop_back();  // after the last '\n'
  return rows;
}

TEST(CsvTest, HeaderThenOneLinePerNodeInBaseUnits) {
  v1::Fleet f;
  v1::Node* n =
      Label(Label(Bound(Offset(AddNode(&f, "web-1"), absl::Microseconds(-312)),
                        absl::Microseconds(403)),
                  "note", "a \"quoted\", text"),
            "rack", "a1");
  n->mutable_hello()->add_addresses("10.0.0.7");
  n->mutable_hello()->add_addresses("10.0.1.7");
  n->mutable_hello()->set_agent_version("0.9.1");
  Digest(n, "abc123");
  n->set_peer("ipv4:10.0.0.7:5123");
  n->mutable_status()->set_refid("10.0.0.1");
  v1::PeerStatus* p = n->mutable_status()->add_peers();
  p->set_reach(0377);
  p->set_mark(v1::SELECTION_MARK_SYSTEM_PEER);
  v1::Node* odd = NoReport(Connection(AddNode(&f, "line\nbreak"),
                                      v1::CONNECTION_STATE_DISCONNECTED));
  odd->clear_first_seen();
  ViewOptions view;
  view.output = OutputFormat::kCsv;
  view.sort = SortKey::kName;
  const std::string csv = *RenderStatusView(f, view, Plain());
  const std::vector<std::vector<std::string>> rows = ParseCsv(csv);
  ASSERT_EQ(rows.size(), 3u) << csv;
  EXPECT_EQ(absl::StrJoin(rows[0], ","), absl::StrJoin(kCsvColumns, ","));
  for (const auto& row : rows) {
    EXPECT_EQ(row.size(), std::size(kCsvColumns)) << absl::StrJoin(row, "|");
  }
  EXPECT_THAT(
      rows[2],
      ElementsAre("web-1", "connected", "synchronised", "-0.000312000",
                  "0.000403000", "false", "11", "10.0.0.1", "377",
                  "0.000000000", "false", "false", "2026-11-25T23:41:09Z",
                  "2026-11-24T23:41:10Z", "client", "0.9.1",
                  "10.0.0.7,10.0.1.7", "note=a \"quoted\", text,rack=a1",
                  "abc123", "ipv4:10.0.0.7:5123", "", "", "", "false", ""));
  // Sorted by name: "line\nbreak" < "web-1"; its newline is inside quotes.
  EXPECT_THAT(rows[1], ElementsAre("line\nbreak", "disconnected", "no-report",
                                   "", "", "", "", "", "", "", "false", "false",
                                   "2026-11-25T23:41:09Z", "", "client", "", "",
                                   "", "", "", "", "", "", "false", ""));
  EXPECT_THAT(csv, HasSubstr("\"line\nbreak\""));
  EXPECT_THAT(csv, HasSubstr("\"note=a \"\"quoted\"\", text,rack=a1\""));
}

TEST(CsvTest, CrosscheckColumnsCarryWhatTheMeshMeasured) {
  v1::Fleet f;
  Measured(Offset(AddNode(&f, "liar"), absl::Microseconds(10)),
           absl::Microseconds(-4990), absl::Microseconds(12), true);
  Measured(Offset(AddNode(&f, "honest"), absl::Microseconds(-20)),
           absl::Microseconds(-25), absl::Microseconds(12), false);
  AddNode(&f, "unmeasured");
  ViewOptions view;
  view.output = OutputFormat::kCsv;
  view.sort = SortKey::kName;
  const std::vector<std::vector<std::string>> rows =
      ParseCsv(*RenderStatusView(f, view, Plain()));
  ASSERT_EQ(rows.size(), 4u);
  const size_t n = std::size(kCsvColumns);
  ASSERT_EQ(rows[0].size(), n);
  EXPECT_THAT(std::vector<std::string>(rows[0].end() - 5, rows[0].end()),
              ElementsAre("crosscheck_measured_offset",
                          "crosscheck_uncertainty", "crosscheck_disagreement",
                          "crosscheck_flagged", "crosscheck_probed_by"));
  auto tail = [](const std::vector<std::string>& row) {
    return std::vector<std::string>(row.end() - 5, row.end());
  };
  EXPECT_THAT(tail(rows[1]), ElementsAre("-0.000025000", "0.000012000",
                                         "0.000005000", "false", "3"));
  EXPECT_THAT(tail(rows[2]), ElementsAre("-0.004990000", "0.000012000",
                                         "0.005000000", "true", "3"));
  EXPECT_THAT(tail(rows[3]), ElementsAre("", "", "", "false", ""));
}

TEST(StatusViewTest, WideShowsMeasuredAndDisagreementAndStateFilters) {
  v1::Fleet f;
  Measured(Offset(AddNode(&f, "liar"), absl::Microseconds(10)),
           absl::Microseconds(-4990), absl::Microseconds(12), true);
  AddNode(&f, "unmeasured");
  SetFleetHeader(&f, absl::Microseconds(10));
  ViewOptions view;
  view.output = OutputFormat::kWide;
  view.sort = SortKey::kName;
  const std::vector<std::string> lines =
      absl::StrSplit(*RenderStatusView(f, view, Plain()), '\n');
  ASSERT_GE(lines.size(), 5u);
  EXPECT_THAT(lines[3], HasSubstr("  MEASURED  DISAGREE  FLAGS"));
  EXPECT_THAT(lines[4], HasSubstr("  -4.990ms  +5.000ms  CROSSCHECK"));
  EXPECT_THAT(lines[5], HasSubstr("         -         -"));
  // --state crosscheck, and unhealthy includes it.
  EXPECT_THAT(Select(f, {}, {"crosscheck"}, {}), ElementsAre("liar"));
  EXPECT_THAT(Select(f, {}, {"unhealthy"}, {}), ElementsAre("liar"));
  EXPECT_THAT(Select(f, {}, {"healthy"}, {}), ElementsAre("unmeasured"));
}

// --- JSON
// ---------------------------------------------------------------------

TEST(JsonTest, UnfilteredIsTheControllersMessageAsBefore) {
  const v1::Fleet f = TestFleet();
  ViewOptions view;
  view.output = OutputFormat::kJson;
  EXPECT_EQ(*RenderStatusView(f, view, Plain()), *ToJson(f));
}

TEST(JsonTest, FilteredHasTheShownNodesAndTheFleetWideFields) {
  const v1::Fleet f = TestFleet();
  ViewOptions view;
  view.output = OutputFormat::kJson;
  view.filter = *ParseNodeFilter({"rack=b2"}, {}, {});
  view.sort = SortKey::kOffset;
  absl::StatusOr<std::string> json = RenderStatusView(f, view, Plain());
  ASSERT_THAT(json, IsOk());
  v1::Fleet back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  ASSERT_EQ(back.nodes_size(), 2);
  EXPECT_EQ(back.nodes(0).name(), "db-1");  // +1.5 ms before +50 µs
  EXPECT_EQ(back.nodes(1).name(), "db-2");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back.nodes(0),
                                                                 f.nodes(2)));
  EXPECT_EQ(back.connected_count(), f.connected_count());
  EXPECT_EQ(back.stale_count(), 1u);
  EXPECT_EQ(back.skew().nanos(), 1'800'000);
  EXPECT_THAT(*json, HasSubstr("\"error_bound\""));  // the proto's names
}

TEST(JsonTest, ShownFleetCopiesEveryFieldButTheNodes) {
  // Every field of Fleet set (found by its descriptor, so a field added later
  // is covered), then ShownFleet must have each one.
  v1::Fleet f = TestFleet();
  const google::protobuf::Descriptor* d = v1::Fleet::descriptor();
  const google::protobuf::Reflection* r = v1::Fleet::GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = d->field(i);
    if (field->is_repeated()) continue;
    if (field->cpp_type() ==
        google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(f, field)) r->MutableMessage(&f, field);
    } else if (field->cpp_type() ==
               google::protobuf::FieldDescriptor::CPPTYPE_UINT32) {
      r->SetUInt32(&f, field, 7);
    }
  }
  const v1::Fleet shown = ShownFleet(f, {&f.nodes(1)});
  ASSERT_EQ(shown.nodes_size(), 1);
  EXPECT_EQ(shown.nodes(0).name(), "web-2");
  v1::Fleet expected = f;
  expected.clear_nodes();
  *expected.add_nodes() = f.nodes(1);
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(shown, expected))
      << shown.DebugString();
}

// --- Nodes
// ----------------------------------------------------------------------

TEST(NodesViewTest, InventoryByNameWithFirstAndLastSeen) {
  v1::Fleet f;
  v1::Node* b =
      Digest(Label(AddNode(&f, "b"), "rack", "a1"), "fedcba9876543210fedcba98");
  b->mutable_hello()->set_agent_version("0.9.1");
  b->mutable_hello()->add_addresses("10.0.0.8");
  b->set_peer("ipv4:10.0.0.8:4000");
  SeenAgo(Connection(AddNode(&f, "a"), v1::CONNECTION_STATE_DISCONNECTED),
          absl::Hours(3));
  SetFleetHeader(&f, absl::ZeroDuration());
  ViewOptions view;
  const std::string text = *RenderNodesView(f, view, Plain());
  EXPECT_EQ(text,
            "2 nodes\n"
            "\n"
            "NODE  CONNECTION    ROLE    VERSION  ADDRESSES  LABELS   DIGEST   "
            "     FIRST SEEN (UTC)     LAST SEEN\n"
            "a     disconnected  client  -        -          -        -        "
            "     2026-11-24 23:41:10     3h ago\n"
            "b     connected     client  0.9.1    10.0.0.8   rack=a1  "
            "fedcba987654  2026-11-24 23:41:10   1.0s ago\n");

  view.output = OutputFormat::kWide;
  view.filter = *ParseNodeFilter({}, {"connected"}, {});
  const std::string wide = *RenderNodesView(f, view, Plain());
  EXPECT_THAT(wide, StartsWith("1 of 2 nodes shown (state connected)\n\n"));
  EXPECT_THAT(wide, HasSubstr("fedcba9876543210fedcba98"));
  EXPECT_THAT(wide, HasSubstr("ipv4:10.0.0.8:4000"));
  EXPECT_THAT(wide, Not(HasSubstr("disconnected")));
}

TEST(NeedsFullFleetTest, OnlyTheTableMakesDoWithASummary) {
  ViewOptions view;
  EXPECT_FALSE(NeedsFullFleet(view));
  view.filter = *ParseNodeFilter({"rack=a1"}, {"stale"}, {"web-*"});
  view.sort = SortKey::kLastSeen;
  EXPECT_FALSE(NeedsFullFleet(view));  // labels are in the summary
  for (OutputFormat o :
       {OutputFormat::kWide, OutputFormat::kJson, OutputFormat::kCsv}) {
    view.output = o;
    EXPECT_TRUE(NeedsFullFleet(view));
  }
}

}  // namespace
}  // namespace ntpfleet::ctl
