#include "controller/crosscheck_hub.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "common/proto_time.h"

namespace ntpfleet::controller {
namespace {

// Bounds on a result (the agent's own, proto/ntpfleet.proto ProbeResult).
constexpr size_t kMaxString = 255;
constexpr int64_t kMaxOffsetSeconds = 1000000;
constexpr absl::Duration kMaxDelay = absl::Seconds(10);

// now - then, never negative: a wall clock stepped back is no time passing.
absl::Duration Since(absl::Time now, absl::Time then) {
  if (then == absl::InfinitePast()) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(), now - then);
}

// A protobuf Duration as protobuf defines it: seconds and nanos of one sign,
// |nanos| < 1e9.
bool WellFormed(const google::protobuf::Duration& d) {
  return d.nanos() > -1000000000 && d.nanos() < 1000000000 &&
         !(d.seconds() > 0 && d.nanos() < 0) &&
         !(d.seconds() < 0 && d.nanos() > 0);
}

bool WellFormed(const google::protobuf::Timestamp& t) {
  // 0001-01-01 .. 9999-12-31, as protobuf's Timestamp.
  return t.seconds() >= -62135596800 && t.seconds() <= 253402300799 &&
         t.nanos() >= 0 && t.nanos() < 1000000000;
}

v1::ProbeAssignment ToAssignment(const std::vector<crosscheck::MeshTarget>& t,
                                 absl::Duration interval) {
  v1::ProbeAssignment a;
  for (const crosscheck::MeshTarget& target : t) {
    v1::ProbeTarget* p = a.add_targets();
    p->set_node(target.node);
    p->set_address(target.address);
  }
  SetDuration(interval, a.mutable_interval());
  return a;
}

}  // namespace

const char* ProbeDropLabel(ProbeDrop reason) {
  switch (reason) {
    case ProbeDrop::kTooManyResults:
      return "too_many_results";
    case ProbeDrop::kUnassigned:
      return "unassigned_target";
    case ProbeDrop::kOffsetRange:
      return "offset_out_of_range";
    case ProbeDrop::kDelayRange:
      return "delay_out_of_range";
    case ProbeDrop::kMalformed:
      return "malformed";
    case ProbeDrop::kCount:
      break;
  }
  return "unknown";
}

CrosscheckHub::CrosscheckHub(CrosscheckOptions options) : options_(options) {}

std::vector<std::pair<std::string, v1::ProbeAssignment>>
CrosscheckHub::UpdateMesh(std::vector<crosscheck::MeshNode> eligible,
                          absl::Time now) {
  std::vector<std::pair<std::string, v1::ProbeAssignment>> changed;
  if (!enabled()) return changed;
  std::sort(eligible.begin(), eligible.end(),
            [](const crosscheck::MeshNode& a, const crosscheck::MeshNode& b) {
              return a.name < b.name;
            });
  {
    absl::MutexLock lock(&mu_);
    const bool same =
        eligible.size() == eligible_.size() &&
        std::equal(
            eligible.begin(), eligible.end(), eligible_.begin(),
            [](const crosscheck::MeshNode& a, const crosscheck::MeshNode& b) {
              return a.name == b.name && a.address == b.address;
            });
    if (same || Since(now, mesh_at_) < options_.mesh_debounce) return changed;
  }
  // Outside the lock: a 10 000-node mesh takes a moment. Only the
  // housekeeper calls this, so nothing else replaces the mesh meanwhile.
  crosscheck::Mesh mesh =
      crosscheck::AssignMesh(eligible, options_.probes, options_.seed);
  absl::MutexLock lock(&mu_);
  for (const auto& [node, targets] : mesh) {
    const auto old = mesh_.find(node);
    if (old == mesh_.end() || old->second != targets) {
      changed.emplace_back(node, ToAssignment(targets, options_.interval));
    }
  }
  for (const auto& [node, targets] : mesh_) {
    if (mesh.find(node) == mesh.end()) {
      changed.emplace_back(node, ToAssignment({}, options_.interval));
    }
  }
  // Edges that are no longer assigned are no longer refreshed: out now.
  std::set<std::pair<std::string, std::string>> assigned;
  for (const auto& [node, targets] : mesh) {
    for (const crosscheck::MeshTarget& t : targets) {
      assigned.emplace(node, t.node);
    }
  }
  for (auto it = edges_.begin(); it != edges_.end();) {
    if (assigned.count(it->first) == 0) {
      edges_.erase(it++);
      new_data_ = true;
    } else {
      ++it;
    }
  }
  mesh_ = std::move(mesh);
  eligible_ = std::move(eligible);
  mesh_at_ = now;
  return changed;
}

std::optional<v1::ProbeAssignment> CrosscheckHub::AssignmentFor(
    const std::string& node) const {
  absl::MutexLock lock(&mu_);
  const auto it = mesh_.find(node);
  if (it == mesh_.end()) return std::nullopt;
  return ToAssignment(it->second, options_.interval);
}

absl::Status CrosscheckHub::Accept(const std::string& node,
                                   const v1::ProbeReport& report,
                                   absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (report.results_size() > kMaxProbeResults) {
    Drop(ProbeDrop::kTooManyResults);
    return absl::InvalidArgumentError(
        absl::StrFormat("ProbeReport dropped: %d results, at most %d",
                        report.results_size(), kMaxProbeResults));
  }
  const auto assigned = mesh_.find(node);
  for (const v1::ProbeResult& r : report.results()) {
    if (r.node().size() > kMaxString || r.address().size() > kMaxString ||
        r.error().size() > 4 * kMaxString) {
      Drop(ProbeDrop::kMalformed);
      continue;
    }
    const bool is_assigned =
        assigned != mesh_.end() &&
        std::any_of(assigned->second.begin(), assigned->second.end(),
                    [&](const crosscheck::MeshTarget& t) {
                      return t.node == r.node() && t.address == r.address();
                    });
    if (!is_assigned) {
      Drop(ProbeDrop::kUnassigned);
      continue;
    }
    if (!r.has_offset()) continue;  // no measurement (r.error says why)
    if (!WellFormed(r.offset()) || !WellFormed(r.delay()) ||
        (r.has_measured_at() && !WellFormed(r.measured_at()))) {
      Drop(ProbeDrop::kMalformed);
      continue;
    }
    if (r.offset().seconds() > kMaxOffsetSeconds ||
        r.offset().seconds() < -kMaxOffsetSeconds) {
      Drop(ProbeDrop::kOffsetRange);
      continue;
    }
    const absl::Duration delay = FromProto(r.delay());
    if (!r.has_delay() || delay < absl::ZeroDuration() || delay > kMaxDelay) {
      Drop(ProbeDrop::kDelayRange);
      continue;
    }
    crosscheck::Edge e;
    e.from = node;
    e.to = r.node();
    e.theta = absl::ToDoubleSeconds(FromProto(r.offset()));
    e.delay = absl::ToDoubleSeconds(delay);
    e.measured_at =
        r.has_measured_at() ? FromProto(r.measured_at()) : absl::InfinitePast();
    auto [it, inserted] = edges_.try_emplace({node, r.node()});
    StoredEdge& stored = it->second;
    // The same result again (no new sample) is not news, and does not keep
    // an edge alive: a target that stopped answering falls out in time.
    if (!inserted && stored.edge.theta == e.theta &&
        stored.edge.delay == e.delay &&
        stored.edge.measured_at == e.measured_at) {
      continue;
    }
    e.received_at = now;
    stored.edge = std::move(e);
    stored.fresh_at = now;
    new_data_ = true;
  }
  return absl::OkStatus();
}

absl::Time CrosscheckHub::StateSince(const std::string& node,
                                     v1::SyncState state, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = states_.try_emplace(node, state, now);
  if (!inserted && it->second.first != state) it->second = {state, now};
  return it->second.second;
}

void CrosscheckHub::ForgetStatesExcept(
    const absl::flat_hash_set<std::string>& nodes) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(states_, [&nodes](const auto& entry) {
    return !nodes.contains(entry.first);
  });
}

bool CrosscheckHub::SolveDue(absl::Time now) const {
  if (!enabled()) return false;
  absl::MutexLock lock(&mu_);
  const absl::Duration since = Since(now, solved_at_);
  if (since < options_.solve_interval) return false;
  return new_data_ || (latest_ != nullptr && since >= options_.interval);
}

void CrosscheckHub::Solve(std::vector<crosscheck::NodeInput> nodes,
                          absl::Time now) {
  crosscheck::SolveInput input;
  input.nodes = std::move(nodes);
  input.as_of = now;
  {
    absl::MutexLock lock(&mu_);
    const absl::Duration lifetime = options_.interval * kEdgeLifetimeIntervals;
    input.edges.reserve(edges_.size());
    for (auto it = edges_.begin(); it != edges_.end();) {
      if (Since(now, it->second.fresh_at) > lifetime) {
        edges_.erase(it++);
        continue;
      }
      input.edges.push_back(it->second.edge);
      ++it;
    }
    new_data_ = false;
    solved_at_ = now;
  }
  // The map's order is arbitrary: sorted, so that a solve is reproducible.
  std::sort(input.edges.begin(), input.edges.end(),
            [](const crosscheck::Edge& a, const crosscheck::Edge& b) {
              return std::tie(a.from, a.to) < std::tie(b.from, b.to);
            });
  auto solution =
      std::make_shared<const crosscheck::Solution>(crosscheck::Solve(input));
  absl::MutexLock lock(&mu_);
  latest_ = std::move(solution);
  ++version_;
}

std::shared_ptr<const crosscheck::Solution> CrosscheckHub::Latest() const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

uint64_t CrosscheckHub::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

std::array<uint64_t, static_cast<size_t>(ProbeDrop::kCount)>
CrosscheckHub::drops() const {
  absl::MutexLock lock(&mu_);
  return drops_;
}

size_t CrosscheckHub::edge_count() const {
  absl::MutexLock lock(&mu_);
  return edges_.size();
}

}  // namespace ntpfleet::controller
