#include "ctl/fleet_drift.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ctl/printable.h"
#include "ctl/text_table.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ntpfleet::ctl {
namespace {

using ::ntpfleet::v1::Node;

// Nodes grouped by digest: biggest group first, then by digest; within a
// group by name.
std::vector<DigestGroup> GroupByDigest(const std::vector<const Node*>& nodes) {
  std::map<std::string, std::vector<const Node*>> by_digest;
  for (const Node* n : nodes)
    by_digest[n->hello().config_digest()].push_back(n);
  std::vector<DigestGroup> groups;
  for (auto& [digest, members] : by_digest) {
    std::stable_sort(
        members.begin(), members.end(),
        [](const Node* a, const Node* b) { return a->name() < b->name(); });
    groups.push_back({digest, std::move(members)});
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const DigestGroup& a, const DigestGroup& b) {
                     return a.nodes.size() > b.nodes.size();
                   });
  return groups;
}

std::string CohortOf(const Node& node, const std::string& by_label) {
  if (by_label.empty()) {
    const std::string role = RoleName(node.hello().role());
    return role.empty() ? "role unset" : role;
  }
  const auto it = node.hello().labels().find(by_label);
  if (it == node.hello().labels().end()) return by_label + " unset";
  return absl::StrCat(by_label, "=", it->second);
}

std::string Short(const std::string& digest, bool wide) {
  if (digest.empty()) return "(none)";
  return Printable(wide ? digest : digest.substr(0, kShortDigest));
}

std::string Names(const std::vector<const Node*>& nodes) {
  constexpr size_t kNamed = 3;
  std::vector<std::string> names;
  for (size_t i = 0; i < nodes.size() && i < kNamed; ++i) {
    names.push_back(Printable(nodes[i]->name()));
  }
  std::string out = absl::StrJoin(names, ", ");
  if (nodes.size() > kNamed) {
    absl::StrAppend(&out, " and ", nodes.size() - kNamed, " more");
  }
  return out;
}

google::protobuf::Value Str(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}

absl::StatusOr<std::string> DriftJson(const DriftReport& r) {
  google::protobuf::Struct root;
  auto& f = *root.mutable_fields();
  f["by"] = Str(r.by);
  f["nodes"].set_number_value(static_cast<double>(r.nodes));
  google::protobuf::ListValue* digests = f["digests"].mutable_list_value();
  for (const DigestGroup& g : r.digests) {
    google::protobuf::Struct* d = digests->add_values()->mutable_struct_value();
    (*d->mutable_fields())["config_digest"] = Str(g.digest);
    google::protobuf::ListValue* names =
        (*d->mutable_fields())["nodes"].mutable_list_value();
    for (const Node* n : g.nodes) *names->add_values() = Str(n->name());
  }
  google::protobuf::ListValue* odd = f["odd_ones_out"].mutable_list_value();
  for (const OddNode& o : r.odd) {
    google::protobuf::Struct* d = odd->add_values()->mutable_struct_value();
    (*d->mutable_fields())["node"] = Str(o.node->name());
    (*d->mutable_fields())["cohort"] = Str(o.cohort);
    (*d->mutable_fields())["config_digest"] =
        Str(o.node->hello().config_digest());
    (*d->mutable_fields())["reference_digest"] = Str(o.reference);
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto s =
      google::protobuf::util::MessageToJsonString(root, &json, options);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat(
        "cannot write the drift report as JSON: ", s.message().ToString()));
  }
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  return json;
}

}  // namespace

DriftReport FindDrift(const std::vector<const Node*>& nodes,
                      const std::string& by_label) {
  DriftReport report;
  report.by = by_label.empty() ? "role" : absl::StrCat("label ", by_label);
  report.nodes = nodes.size();
  report.digests = GroupByDigest(nodes);
  std::map<std::string, std::vector<const Node*>> cohorts;
  for (const Node* n : nodes) cohorts[CohortOf(*n, by_label)].push_back(n);
  for (const auto& [name, members] : cohorts) {
    Cohort cohort;
    cohort.name = name;
    cohort.size = members.size();
    cohort.digests = GroupByDigest(members);
    cohort.has_reference =
        cohort.digests.size() == 1 ||
        cohort.digests[0].nodes.size() > cohort.digests[1].nodes.size();
    const std::string reference =
        cohort.has_reference ? cohort.digests[0].digest : "";
    const size_t reference_nodes =
        cohort.has_reference ? cohort.digests[0].nodes.size() : 0;
    std::vector<OddNode> odd;
    for (size_t i = cohort.has_reference ? 1 : 0; i < cohort.digests.size();
         ++i) {
      for (const Node* n : cohort.digests[i].nodes) {
        odd.push_back({n, name, reference, reference_nodes, members.size()});
      }
    }
    std::stable_sort(odd.begin(), odd.end(),
                     [](const OddNode& a, const OddNode& b) {
                       return a.node->name() < b.node->name();
                     });
    report.odd.insert(report.odd.end(), odd.begin(), odd.end());
    report.cohorts.push_back(std::move(cohort));
  }
  return report;
}

absl::StatusOr<std::string> RenderDrift(const DriftReport& report,
                                        OutputFormat output,
                                        const RenderOptions& opts) {
  if (output == OutputFormat::kJson) return DriftJson(report);
  if (output == OutputFormat::kCsv) {
    std::string out = "node,cohort,config_digest,reference_digest,odd\n";
    for (const Cohort& c : report.cohorts) {
      const std::string reference = c.has_reference ? c.digests[0].digest : "";
      std::vector<const Node*> members;
      for (const DigestGroup& g : c.digests) {
        members.insert(members.end(), g.nodes.begin(), g.nodes.end());
      }
      std::stable_sort(
          members.begin(), members.end(),
          [](const Node* a, const Node* b) { return a->name() < b->name(); });
      for (const Node* n : members) {
        const bool odd =
            !c.has_reference || n->hello().config_digest() != reference;
        absl::StrAppend(&out, CsvField(n->name()), ",", CsvField(c.name), ",",
                        CsvField(n->hello().config_digest()), ",",
                        CsvField(reference), ",", odd ? "true" : "false", "\n");
      }
    }
    return out;
  }
  const bool wide = output == OutputFormat::kWide;
  if (report.nodes == 0) return std::string("no nodes to compare\n");
  std::string out = absl::StrCat(
      report.digests.size(),
      report.digests.size() == 1 ? " configuration digest"
                                 : " configuration digests",
      " among ", report.nodes, report.nodes == 1 ? " node" : " nodes", ", by ",
      report.by, "\n\n");
  std::vector<std::vector<Cell>> rows;
  for (const DigestGroup& g : report.digests) {
    // The cohorts this digest is found in, with how many nodes each.
    std::vector<std::string> in;
    for (const Cohort& c : report.cohorts) {
      for (const DigestGroup& cg : c.digests) {
        if (cg.digest == g.digest) {
          in.push_back(
              absl::StrCat(Printable(c.name), " (", cg.nodes.size(), ")"));
        }
      }
    }
    rows.push_back({{Short(g.digest, wide)},
                    {absl::StrCat(g.nodes.size())},
                    {absl::StrJoin(in, ", ")},
                    {Names(g.nodes)}});
  }
  absl::StrAppend(&out,
                  RenderTable({{"DIGEST", Align::kLeft, 0},
                               {"NODES", Align::kRight, 0},
                               {"COHORTS", Align::kLeft, 0},
                               {"EXAMPLES", Align::kLeft, 0}},
                              rows, opts.color),
                  "\n");
  if (!report.drift()) {
    absl::StrAppend(&out,
                    "no drift: every node has the most common "
                    "configuration of its ",
                    report.by == "role" ? "role" : "cohort", "\n");
    return out;
  }
  rows.clear();
  for (const OddNode& o : report.odd) {
    rows.push_back(
        {{Printable(o.node->name())},
         {Printable(o.cohort)},
         {Short(o.node->hello().config_digest(), wide), kRed},
         {o.reference_nodes > 0
              ? absl::StrCat(Short(o.reference, wide), " (", o.reference_nodes,
                             " of ", o.cohort_nodes, ")")
              : std::string("none: the most common digests tie")}});
  }
  absl::StrAppend(&out, report.odd.size(),
                  report.odd.size() == 1 ? " odd one out" : " odd ones out",
                  " (configuration differs from the most common of its ",
                  report.by == "role" ? "role" : "cohort", "):\n",
                  RenderTable({{"NODE", Align::kLeft, 0},
                               {"COHORT", Align::kLeft, 0},
                               {"DIGEST", Align::kLeft, 0},
                               {"REFERENCE", Align::kLeft, 0}},
                              rows, opts.color));
  return out;
}

}  // namespace ntpfleet::ctl
