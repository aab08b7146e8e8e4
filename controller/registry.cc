#include "controller/registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/fleet_stats.h"
#include "common/proto_time.h"
#include "common/summary_peer.h"
#include "controller/validate.h"
#include "google/protobuf/arena.h"

namespace ntpfleet::controller {
namespace {

absl::Status NotLive(uint64_t connection) {
  return absl::NotFoundError(absl::StrCat(
      "connection ", connection,
      " is not live: it ended or a newer stream from the same agent replaced "
      "it"));
}

bool SameInstance(const v1::Hello& a, const v1::Hello& b) {
  return a.instance_id() == b.instance_id();
}

// A fleet message on its own arena, and the arena's owner. A snapshot is built
// from thousands of small messages (every Duration is one): on an arena that
// is a few large allocations instead of hundreds of thousands of malloc/free
// pairs, freed at once with the last shared_ptr.
std::pair<std::shared_ptr<google::protobuf::Arena>, v1::Fleet*>
NewArenaFleet() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 64 << 10;
  options.max_block_size = 4 << 20;
  auto arena = std::make_shared<google::protobuf::Arena>(options);
  return {arena,
          google::protobuf::Arena::CreateMessage<v1::Fleet>(arena.get())};
}

}  // namespace

std::shared_ptr<const v1::Fleet> SummarizeFleet(const v1::Fleet& full) {
  auto [owned, fleet] = NewArenaFleet();
  *fleet = full;
  for (v1::Node& node : *fleet->mutable_nodes()) {
    // What a table neither shows nor filters on: where the agent connects
    // from, its configuration's digest, when it first came. Labels stay:
    // `ntpfleetctl status --label K=V` selects by them.
    v1::Hello& hello = *node.mutable_hello();
    hello.clear_addresses();
    hello.clear_config_digest();
    hello.clear_instance_id();
    node.clear_peer();
    node.clear_first_seen();
    if (!node.has_status() || node.status().peers_size() <= 1) continue;
    v1::SyncStatus& status = *node.mutable_status();
    const v1::PeerStatus* keep = SummaryPeer(status);
    int index = 0;
    while (&status.peers(index) != keep) ++index;  // keep is one of them
    status.mutable_peers()->SwapElements(0, index);
    status.mutable_peers()->DeleteSubrange(1, status.peers_size() - 1);
  }
  return std::shared_ptr<const v1::Fleet>(std::move(owned), fleet);
}

Registry::Registry(const clock::Clock* clock,
                   const clock::MonotonicClock* monotonic,
                   RegistryOptions options)
    : clock_(clock),
      monotonic_(monotonic),
      options_(options),
      tokens_(options.new_names_burst),
      tokens_at_(monotonic->Now()) {}

absl::Status Registry::AdmitNewName(const std::string& name,
                                    clock::MonoTime now) {
  if (nodes_.size() >= options_.max_nodes) {
    ++counters_.refused_new_names;
    return absl::ResourceExhaustedError(absl::StrFormat(
        "node '%s' refused: the controller already knows %d nodes, its limit "
        "(--max-nodes %d); raise --max-nodes, or remove decommissioned nodes "
        "with `ntpfleetctl forget`",
        name, nodes_.size(), options_.max_nodes));
  }
  // Refill for the time since the last look (never backwards: the monotonic
  // clock does not go back, and a bucket is never drained by a clock).
  const absl::Duration elapsed = now - tokens_at_;
  if (elapsed > absl::ZeroDuration()) {
    tokens_ = std::min(options_.new_names_burst,
                       tokens_ + absl::ToDoubleSeconds(elapsed) *
                                     options_.new_names_per_second);
    tokens_at_ = now;
  }
  if (tokens_ < 1) {
    ++counters_.refused_new_names;
    return absl::ResourceExhaustedError(absl::StrFormat(
        "node '%s' refused: too many new node names at once (more than %g "
        "at once, then %g a second; --new-names-burst, "
        "--new-names-per-second); the agent retries, or raise those flags",
        name, options_.new_names_burst, options_.new_names_per_second));
  }
  tokens_ -= 1;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Registry::Connect(const v1::Hello& hello,
                                           const std::string& peer) {
  if (absl::Status s = ValidateHello(hello); !s.ok()) {
    absl::MutexLock lock(&mu_);
    ++counters_.rejected_hellos;
    return absl::InvalidArgumentError(
        absl::StrCat("agent at ", peer, " sent an invalid Hello: ", s.message(),
                     "; fix the agent's configuration"));
  }
  const absl::Time now = clock_->Now();
  const clock::MonoTime mono = monotonic_->Now();
  absl::MutexLock lock(&mu_);
  if (nodes_.find(hello.node_name()) == nodes_.end()) {
    if (absl::Status s = AdmitNewName(hello.node_name(), mono); !s.ok()) {
      return s;
    }
  }
  const uint64_t id = next_connection_++;
  std::vector<Entry>& entries = nodes_[hello.node_name()];

  // The entry this connection takes over: the same instance's live stream (a
  // reconnect), or the name's entry without a stream. Otherwise it is a new
  // entry beside the live one(s): a duplicate.
  Entry* slot = nullptr;
  for (Entry& e : entries) {
    if (e.connection != 0 && SameInstance(*e.hello, hello)) {
      slot = &e;
      break;
    }
  }
  if (slot == nullptr) {
    for (Entry& e : entries) {
      if (e.connection == 0) {
        slot = &e;
        break;
      }
    }
  }
  if (slot == nullptr) {
    // A duplicate of a live name (or a new name): the name was first seen
    // when its first entry was.
    const absl::Time first_seen =
        entries.empty() ? absl::InfinitePast() : entries.front().first_seen;
    slot = &entries.emplace_back();
    slot->first_seen = first_seen;
  }
  // A new name, or one the inventory had no first-seen time for: now, as the
  // store records it (Store::UpsertNode keeps the first insert's).
  if (slot->first_seen == absl::InfinitePast()) slot->first_seen = now;

  if (slot->connection != 0) live_.erase(slot->connection);
  slot->connection = id;
  slot->hello = std::make_shared<const v1::Hello>(hello);
  slot->peer = peer;
  // The status is kept: until the new stream reports, the node's latest status
  // is still the one it last sent.
  slot->last_seen = now;
  slot->last_heard = mono;
  live_[id] = hello.node_name();
  ++version_;
  return id;
}

Registry::Entry* Registry::FindLive(uint64_t connection) {
  const auto it = live_.find(connection);
  if (it == live_.end()) return nullptr;
  const auto node = nodes_.find(it->second);
  if (node == nodes_.end()) return nullptr;  // cannot happen: see live_
  for (Entry& e : node->second) {
    if (e.connection == connection) return &e;
  }
  return nullptr;  // cannot happen: live_ and nodes_ change together
}

absl::Status Registry::Heard(uint64_t connection, absl::Time now,
                             clock::MonoTime mono) {
  Entry* e = FindLive(connection);
  if (e == nullptr) return NotLive(connection);
  e->last_seen = now;
  e->last_heard = mono;
  ++version_;
  return absl::OkStatus();
}

absl::Status Registry::Report(uint64_t connection,
                              const v1::SyncStatus& status) {
  return Report(connection, std::make_shared<const v1::SyncStatus>(status));
}

absl::Status Registry::Report(uint64_t connection,
                              std::shared_ptr<const v1::SyncStatus> status) {
  // Outside the lock: a status has up to 64 peers to look at.
  if (absl::Status s = ValidateStatus(*status); !s.ok()) {
    absl::MutexLock lock(&mu_);
    // A dead stream is told so first: its reactor ends it.
    if (FindLive(connection) == nullptr) return NotLive(connection);
    ++counters_.rejected_statuses;
    return absl::InvalidArgumentError(
        absl::StrCat("SyncStatus dropped: ", s.message()));
  }
  const absl::Time now = clock_->Now();
  const clock::MonoTime mono = monotonic_->Now();
  const std::shared_ptr<const v1::SyncStatus> reported = status;
  std::string node;  // for on_report, which runs outside the lock
  {
    absl::MutexLock lock(&mu_);
    Entry* e = FindLive(connection);
    if (e == nullptr) return NotLive(connection);
    // The old status is released outside the lock when `status` goes out of
    // scope after the swap.
    e->status.swap(status);
    e->last_seen = now;
    e->last_heard = mono;
    ++version_;
    if (options_.on_report) node = e->hello->node_name();
  }
  // Per-node history's aggregation (its own sharded locks) does not hold up
  // every other report behind the registry's lock.
  if (options_.on_report) options_.on_report(node, *reported, now);
  return absl::OkStatus();
}

absl::Status Registry::ReportResult(uint64_t connection,
                                    const v1::ResyncResult& result) {
  if (absl::Status s = ValidateResyncResult(result); !s.ok()) {
    absl::MutexLock lock(&mu_);
    if (FindLive(connection) == nullptr) return NotLive(connection);
    ++counters_.rejected_results;
    return absl::InvalidArgumentError(
        absl::StrCat("ResyncResult dropped: ", s.message()));
  }
  return Touch(connection);
}

absl::Status Registry::Touch(uint64_t connection) {
  const absl::Time now = clock_->Now();
  const clock::MonoTime mono = monotonic_->Now();
  absl::MutexLock lock(&mu_);
  return Heard(connection, now, mono);
}

void Registry::Disconnect(uint64_t connection) {
  absl::MutexLock lock(&mu_);
  const auto it = live_.find(connection);
  if (it == live_.end()) return;
  const auto node = nodes_.find(it->second);
  live_.erase(it);
  if (node == nodes_.end()) return;  // cannot happen: see live_
  std::vector<Entry>& entries = node->second;
  const auto self =
      std::find_if(entries.begin(), entries.end(),
                   [&](const Entry& e) { return e.connection == connection; });
  if (self == entries.end()) return;  // cannot happen
  const bool other_live =
      std::any_of(entries.begin(), entries.end(), [&](const Entry& e) {
        return e.connection != 0 && e.connection != connection;
      });
  if (other_live) {
    entries.erase(self);  // the name lives on in its other stream(s)
  } else {
    self->connection = 0;
  }
  ++version_;
}

void Registry::AddKnownNode(const v1::Hello& hello, absl::Time last_seen,
                            absl::Time first_seen) {
  if (hello.node_name().empty()) return;
  absl::MutexLock lock(&mu_);
  std::vector<Entry>& entries = nodes_[hello.node_name()];
  if (!entries.empty()) return;
  Entry& e = entries.emplace_back();
  e.hello = std::make_shared<const v1::Hello>(hello);
  e.last_seen = last_seen;
  e.first_seen = first_seen;
  ++version_;
}

absl::Status Registry::Forget(const std::string& name) {
  absl::MutexLock lock(&mu_);
  const auto it = nodes_.find(name);
  if (it == nodes_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no node named '", name,
        "' is known to this controller; `ntpfleetctl status` lists them"));
  }
  for (const Entry& e : it->second) {
    if (e.connection != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", name, " is connected (from ", e.peer,
                       "): stop its agent first, then forget it"));
    }
  }
  nodes_.erase(it);
  ++version_;
  return absl::OkStatus();
}

RegistryCounters Registry::counters() const {
  absl::ReaderMutexLock lock(&mu_);
  return counters_;
}

absl::Duration Registry::StaleAfter(const v1::Hello& hello) const {
  // Validated on Connect: 100 ms .. 24 h, so this is bounded. (A Hello from
  // the inventory is never judged: it has no live stream.)
  return FromProto(hello.report_interval()) * options_.stale_intervals;
}

bool Registry::Expired(const Snapshot& snapshot) const {
  return monotonic_->Now() >= snapshot.valid_until;
}

Registry::Snapshot Registry::TakeSnapshot(
    const std::function<void(v1::Fleet*)>& decorate) const {
  // What the fleet is made of, copied under the lock as pointers.
  struct Row {
    std::string name;
    std::shared_ptr<const v1::Hello> hello;
    std::string peer;
    std::shared_ptr<const v1::SyncStatus> status;
    absl::Time last_seen;
    absl::Time first_seen;
    v1::ConnectionState connection;
    bool duplicate_name;
  };
  std::vector<Row> rows;
  Snapshot snapshot;
  const absl::Time now = clock_->Now();
  const clock::MonoTime mono = monotonic_->Now();
  {
    absl::ReaderMutexLock lock(&mu_);
    snapshot.version = version_;
    rows.reserve(live_.size() + nodes_.size());
    for (const auto& [name, entries] : nodes_) {
      const int live = static_cast<int>(
          std::count_if(entries.begin(), entries.end(),
                        [](const Entry& e) { return e.connection != 0; }));
      for (const Entry& e : entries) {
        v1::ConnectionState state = v1::CONNECTION_STATE_DISCONNECTED;
        if (e.connection != 0) {
          const clock::MonoTime stale_at = e.last_heard + StaleAfter(*e.hello);
          if (mono >= stale_at) {
            state = v1::CONNECTION_STATE_STALE;
          } else {
            state = v1::CONNECTION_STATE_CONNECTED;
            snapshot.valid_until = std::min(snapshot.valid_until, stale_at);
          }
        }
        rows.push_back(Row{name, e.hello, e.peer, e.status, e.last_seen,
                           e.first_seen, state, e.connection != 0 && live > 1});
      }
    }
  }

  auto [owned, fleet] = NewArenaFleet();
  SetTimestamp(now, fleet->mutable_as_of());
  fleet->mutable_nodes()->Reserve(static_cast<int>(rows.size()));
  for (Row& row : rows) {
    v1::Node* node = fleet->add_nodes();
    node->set_name(std::move(row.name));
    *node->mutable_hello() = *row.hello;
    // Never handed out: it tells an agent's own reconnect from a duplicate,
    // so whoever knew it could pass for that agent.
    node->mutable_hello()->clear_instance_id();
    node->set_peer(std::move(row.peer));
    if (row.status != nullptr) *node->mutable_status() = *row.status;
    if (row.last_seen != absl::InfinitePast()) {
      SetTimestamp(row.last_seen, node->mutable_last_seen());
    }
    if (row.first_seen != absl::InfinitePast()) {
      SetTimestamp(row.first_seen, node->mutable_first_seen());
    }
    node->set_duplicate_name(row.duplicate_name);
    node->set_connection(row.connection);
  }
  rows.clear();  // releases the shared messages before the fleet is handed on
  // Skew, error bound, deviations, flags and counts: the one definition,
  // shared with ntpfleetctl's merge of several controllers.
  ComputeFleetStats(options_.skew_threshold, fleet);
  if (decorate) decorate(fleet);
  snapshot.fleet = std::shared_ptr<const v1::Fleet>(std::move(owned), fleet);
  return snapshot;
}

v1::Fleet Registry::GetFleet() const { return *TakeSnapshot().fleet; }

std::optional<v1::Node> Registry::GetNode(const std::string& name) const {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (nodes_.find(name) == nodes_.end()) return std::nullopt;
  }
  // Deviation and the flag need the whole fleet.
  const Snapshot snapshot = TakeSnapshot();
  for (const v1::Node& node : snapshot.fleet->nodes()) {
    if (node.name() == name) return node;
  }
  return std::nullopt;
}

absl::StatusOr<Registry::Selection> Registry::Select(
    const v1::NodeSelector& selector) const {
  std::string label_key;
  std::string label_value;
  const bool by_label = !selector.label().empty();
  if (by_label) {
    const size_t eq = selector.label().find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("node selector label '", selector.label(),
                       "' is not key=value (e.g. rack=a1)"));
    }
    label_key = selector.label().substr(0, eq);
    label_value = selector.label().substr(eq + 1);
  }
  if (!selector.all() && !by_label && selector.names().empty()) {
    return absl::InvalidArgumentError(
        "node selector selects nothing: give node names, a label key=value, "
        "or all");
  }

  absl::ReaderMutexLock lock(&mu_);
  std::set<std::string> chosen;  // names, sorted, no repeats
  if (selector.all()) {
    for (const auto& entry : nodes_) chosen.insert(entry.first);
  } else {
    chosen.insert(selector.names().begin(), selector.names().end());
    if (by_label) {
      for (const auto& [name, entries] : nodes_) {
        for (const Entry& e : entries) {
          const auto it = e.hello->labels().find(label_key);
          if (it != e.hello->labels().end() && it->second == label_value) {
            chosen.insert(name);
          }
        }
      }
    }
  }

  Selection selection;
  for (const std::string& name : chosen) {
    const auto it = nodes_.find(name);
    bool any_live = false;
    if (it != nodes_.end()) {
      for (const Entry& e : it->second) {
        if (e.connection == 0) continue;
        selection.connected.push_back(Target{name, e.connection});
        any_live = true;
      }
    }
    if (!any_live) selection.not_connected.push_back(name);
  }
  return selection;
}

uint64_t Registry::version() const {
  absl::ReaderMutexLock lock(&mu_);
  return version_;
}

}  // namespace ntpfleet::controller
