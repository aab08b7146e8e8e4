// Fuzz target for the controller's handling of agent streams, without gRPC: a
// controller::Registry on fake clocks fed a sequence of stream events decoded
// from the input, as the AgentService reactor (controller/service.cc) would
// feed it, with the fleet's invariants checked after every step and the
// registry's answers checked against a small model of which streams are live.
//
// Input: a sequence of steps, each an op byte and its operands:
//   op % kOps   operands                      registry call
//   kConnect    slot, len16, Hello            Connect (a new stream in slot)
//   kReport     slot, len16, SyncStatus       Report on the slot's stream
//   kTouch      slot, len16, ResyncResult     Touch (a resync result arrived)
//   kDisconnect slot                          Disconnect (the stream ended)
//   kAdvance    int16 (x 10 ms, may be < 0)   the wall clock moves
//   kSnapshot   -                             TakeSnapshot, GetNode of each
//   kSelect     len16, NodeSelector           Select
//   kSummarize  -                             SummarizeFleet of a snapshot
//   kKnown      age byte, len16, Hello        AddKnownNode (last seen age s
//   ago) kReportOld  index, len16, SyncStatus      Report on any stream ever
//   opened kMessage    slot, len16, AgentMessage     what the reactor does with
//   it
// slot is a byte % kSlots; len16 is a little-endian length (cut to what is
// left) of a serialized message; a message that does not parse skips the step.
// The seed corpus is written by corpus/agent_stream/make_seeds.py.
//
// Checked after every step: TakeSnapshot and SummarizeFleet do not crash (nor
// trip ASan/UBSan); nodes are sorted by name; connected_count + stale_count
// equals the nodes in those states and is at most the node count, and equals
// the model's live streams; flagged_count <= connected_count; skew >= 0 and
// max_error_bound >= 0; a fresh snapshot is not yet out of date (valid_until);
// version() never decreases and grows on every accepted change. Report/Touch
// succeed exactly on the streams the model says are live (a Connect with the
// node_name and instance_id of a live stream replaces it; Disconnect ends it).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "controller/registry.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/ntpfleet.pb.h"
#include "tests/testing/fake_clock.h"

namespace {

using ntpfleet::controller::Registry;
namespace v1 = ntpfleet::v1;

// ---------------------------------------------------------------------------
// Adapter: every call into controller::Registry is here, so a change of its
// API (a monotonic clock, Connect/Report returning absl::Status, Forget) is
// an edit of this section only.
class FleetUnderTest {
 public:
  FleetUnderTest() : registry_(&wall_, &monotonic_) {}

  // The controller's wall clock (may step backwards) and, once the Registry
  // takes one, its monotonic clock (never backwards; unused until then).
  void Advance(absl::Duration d) {
    wall_.Advance(d);
    if (d > absl::ZeroDuration()) monotonic_.Advance(d);
  }
  absl::Time WallNow() const { return wall_.Now(); }

  // The new stream's id, or nullopt when the registry refuses the Hello.
  std::optional<uint64_t> Connect(const v1::Hello& hello,
                                  const std::string& peer) {
    absl::StatusOr<uint64_t> id = registry_.Connect(hello, peer);
    if (!id.ok()) return std::nullopt;
    return *id;
  }
  // OK: taken; NotFound: the stream is not live; InvalidArgument: dropped
  // (out of bounds), the stream goes on.
  absl::Status Report(uint64_t connection, const v1::SyncStatus& status) {
    return registry_.Report(connection, status);
  }
  absl::Status Touch(uint64_t connection, const v1::ResyncResult& result) {
    return registry_.ReportResult(connection, result);
  }
  void Disconnect(uint64_t connection) { registry_.Disconnect(connection); }
  void AddKnownNode(const v1::Hello& hello, absl::Time last_seen) {
    registry_.AddKnownNode(hello, last_seen);
  }
  Registry::Snapshot TakeSnapshot() const { return registry_.TakeSnapshot(); }
  std::optional<v1::Node> GetNode(const std::string& name) const {
    return registry_.GetNode(name);
  }
  absl::StatusOr<Registry::Selection> Select(
      const v1::NodeSelector& selector) const {
    return registry_.Select(selector);
  }
  uint64_t version() const { return registry_.version(); }
  bool Expired(const Registry::Snapshot& s) const {
    return registry_.Expired(s);
  }

 private:
  ntpfleet::testing::FakeClock wall_;
  ntpfleet::testing::FakeMonotonicClock monotonic_;
  Registry registry_;
};
// End of adapter.
// ---------------------------------------------------------------------------

enum Op : uint8_t {
  kConnect,
  kReport,
  kTouch,
  kDisconnect,
  kAdvance,
  kSnapshot,
  kSelect,
  kSummarize,
  kKnown,
  kReportOld,
  kMessage,
  kOps
};
constexpr int kSlots = 8;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "agent_stream_fuzz: %s\n", what.c_str());
  std::abort();
}
void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

// Reads the input front to back; past the end everything reads as empty/zero.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  int16_t Int16() {
    const uint16_t lo = Byte();
    const uint16_t hi = Byte();
    return static_cast<int16_t>(lo | (hi << 8));
  }
  // A length-prefixed message; false (input consumed) when it does not parse.
  template <typename Message>
  bool Parse(Message* out) {
    size_t len = static_cast<uint16_t>(Int16());
    len = std::min(len, size_ - std::min(pos_, size_));
    const bool ok = out->ParseFromArray(data_ + pos_, static_cast<int>(len));
    pos_ += len;
    return ok;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Which streams are live, as the registry contract says
// (controller/registry.h).
struct Model {
  struct Stream {
    std::string name;
    std::string instance;
  };
  std::map<uint64_t, Stream> live;
  std::vector<uint64_t> ever;            // every id Connect returned
  std::optional<uint64_t> slot[kSlots];  // the stream each slot talks on

  void Connected(uint64_t id, const v1::Hello& hello) {
    Check(live.count(id) == 0 &&
              std::find(ever.begin(), ever.end(), id) == ever.end(),
          absl::StrCat("Connect returned id ", id, " a second time"));
    Check(id != 0, "Connect returned connection id 0");
    // A live stream of the same agent (name and instance) is replaced.
    for (auto it = live.begin(); it != live.end(); ++it) {
      if (it->second.name == hello.node_name() &&
          it->second.instance == hello.instance_id()) {
        live.erase(it);
        break;
      }
    }
    live[id] = Stream{hello.node_name(), hello.instance_id()};
    ever.push_back(id);
  }
};

std::string Peer(int slot) {
  return absl::StrCat("ipv4:10.0.0.", slot, ":5123");
}

void CheckSnapshot(const FleetUnderTest& fleet, const Model& model,
                   const Registry::Snapshot& snapshot) {
  Check(snapshot.fleet != nullptr, "TakeSnapshot returned no fleet");
  const v1::Fleet& f = *snapshot.fleet;
  int connected = 0;
  int stale = 0;
  for (int i = 0; i < f.nodes_size(); ++i) {
    const v1::Node& n = f.nodes(i);
    if (i > 0) {
      Check(f.nodes(i - 1).name() <= n.name(),
            absl::StrCat("nodes not sorted: '", f.nodes(i - 1).name(),
                         "' before '", n.name(), "'"));
    }
    Check(!n.name().empty(), "a node without a name");
    if (n.connection() == v1::CONNECTION_STATE_CONNECTED) ++connected;
    if (n.connection() == v1::CONNECTION_STATE_STALE) ++stale;
    Check(!n.flagged() || n.has_deviation(),
          absl::StrCat(n.name(), " flagged without a deviation"));
  }
  Check(f.connected_count() == static_cast<uint32_t>(connected) &&
            f.stale_count() == static_cast<uint32_t>(stale),
        absl::StrCat("counts ", f.connected_count(), "+", f.stale_count(),
                     " but nodes say ", connected, "+", stale));
  Check(f.connected_count() + f.stale_count() <=
            static_cast<uint32_t>(f.nodes_size()),
        "connected_count + stale_count > nodes");
  Check(static_cast<size_t>(connected + stale) == model.live.size(),
        absl::StrCat(connected + stale, " live nodes in the snapshot, ",
                     model.live.size(), " live streams"));
  Check(f.flagged_count() <= f.connected_count(),
        "flagged_count > connected_count");
  Check(ntpfleet::FromProto(f.skew()) >= absl::ZeroDuration(),
        absl::StrCat("negative skew ",
                     absl::FormatDuration(ntpfleet::FromProto(f.skew()))));
  Check(ntpfleet::FromProto(f.max_error_bound()) >= absl::ZeroDuration(),
        "negative max_error_bound");
  Check(!fleet.Expired(snapshot),
        "a snapshot just taken is already out of date (valid_until)");
  Check(snapshot.version <= fleet.version(),
        "snapshot version from the future");
}

void CheckSummary(const v1::Fleet& full) {
  const std::shared_ptr<const v1::Fleet> summary =
      ntpfleet::controller::SummarizeFleet(full);
  Check(summary != nullptr, "SummarizeFleet returned null");
  Check(summary->nodes_size() == full.nodes_size(),
        "SummarizeFleet changed the node count");
  for (int i = 0; i < summary->nodes_size(); ++i) {
    const v1::Node& n = summary->nodes(i);
    Check(n.name() == full.nodes(i).name(), "SummarizeFleet reordered nodes");
    Check(n.status().peers_size() <= 1,
          "SummarizeFleet left more than one peer row");
    Check(n.peer().empty() && n.hello().addresses().empty() &&
              n.hello().config_digest().empty() && !n.has_first_seen(),
          "SummarizeFleet kept the peer address, addresses, config digest "
          "or first_seen");
    // Kept: `ntpfleetctl status --label K=V` filters a summary on them.
    Check(n.hello().labels_size() == full.nodes(i).hello().labels_size(),
          "SummarizeFleet dropped labels");
  }
}

void CheckSelection(const Model& model,
                    const absl::StatusOr<Registry::Selection>& selection) {
  if (!selection.ok()) return;
  const auto& connected = selection->connected;
  for (size_t i = 0; i < connected.size(); ++i) {
    Check(i == 0 || connected[i - 1].node <= connected[i].node,
          "Select: connected targets not sorted");
    const auto it = model.live.find(connected[i].connection);
    Check(it != model.live.end() && it->second.name == connected[i].node,
          absl::StrCat("Select: target ", connected[i].node, "/",
                       connected[i].connection, " is not a live stream"));
  }
  const auto& nc = selection->not_connected;
  for (size_t i = 1; i < nc.size(); ++i) {
    Check(nc[i - 1] < nc[i], "Select: not_connected not sorted or repeated");
  }
  for (const auto& t : connected) {
    Check(!std::binary_search(nc.begin(), nc.end(), t.node),
          absl::StrCat("Select: ", t.node, " both connected and not"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs every string field with invalid UTF-8 it parses; at
  // thousands of inputs a second that is most of the run's time and log.
  static const bool silenced = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)silenced;
  Input in(data, size);
  FleetUnderTest fleet;
  Model model;
  uint64_t version = fleet.version();
  // A change the registry accepted must bump version().
  auto changed = [&](bool accepted, const char* what) {
    const uint64_t now = fleet.version();
    Check(now >= version, absl::StrCat(what, ": version went backwards"));
    if (accepted) Check(now > version, absl::StrCat(what, ": no new version"));
    version = now;
  };
  // A report or touch on `id` is refused as NotFound exactly when the stream
  // is not live; on a live one it is taken (a new version) or dropped as out
  // of bounds (InvalidArgument).
  auto on_stream = [&](uint64_t id, const absl::Status& s, const char* what) {
    const bool live = model.live.count(id) == 1;
    Check(absl::IsNotFound(s) != live,
          absl::StrCat(what, " on connection ", id, " returned ", s.ToString(),
                       " but the stream is ", live ? "live" : "not live"));
    Check(s.ok() || absl::IsNotFound(s) || absl::IsInvalidArgument(s),
          absl::StrCat(what, ": unexpected ", s.ToString()));
    changed(s.ok(), what);
  };

  while (!in.done()) {
    const uint8_t op = in.Byte() % kOps;
    switch (op) {
      case kConnect: {
        const int slot = in.Byte() % kSlots;
        v1::Hello hello;
        if (!in.Parse(&hello)) break;
        const std::optional<uint64_t> id = fleet.Connect(hello, Peer(slot));
        if (id.has_value()) {
          model.Connected(*id, hello);
          model.slot[slot] = *id;  // the old stream (if any) lingers
        }
        changed(id.has_value(), "Connect");
        break;
      }
      case kReport: {
        const int slot = in.Byte() % kSlots;
        v1::SyncStatus status;
        if (!in.Parse(&status) || !model.slot[slot].has_value()) break;
        on_stream(*model.slot[slot], fleet.Report(*model.slot[slot], status),
                  "Report");
        break;
      }
      case kTouch: {
        const int slot = in.Byte() % kSlots;
        v1::ResyncResult result;
        if (!in.Parse(&result) || !model.slot[slot].has_value()) break;
        on_stream(*model.slot[slot], fleet.Touch(*model.slot[slot], result),
                  "Touch");
        break;
      }
      case kDisconnect: {
        const int slot = in.Byte() % kSlots;
        if (!model.slot[slot].has_value()) break;
        const uint64_t id = *model.slot[slot];
        const bool was_live = model.live.erase(id) == 1;
        fleet.Disconnect(id);
        model.slot[slot].reset();
        changed(was_live, "Disconnect");
        if (!was_live) {
          Check(fleet.version() == version,
                "Disconnect of a dead stream changed the registry");
        }
        break;
      }
      case kAdvance:
        // ±327 s; backwards too: the controller's wall clock may be stepped.
        fleet.Advance(absl::Milliseconds(10) * in.Int16());
        break;
      case kSnapshot: {
        const Registry::Snapshot snapshot = fleet.TakeSnapshot();
        for (const v1::Node& n : snapshot.fleet->nodes()) {
          const std::optional<v1::Node> node = fleet.GetNode(n.name());
          Check(node.has_value() && node->name() == n.name(),
                absl::StrCat("GetNode(", n.name(), ") lost a listed node"));
        }
        break;
      }
      case kSelect: {
        v1::NodeSelector selector;
        if (!in.Parse(&selector)) break;
        CheckSelection(model, fleet.Select(selector));
        break;
      }
      case kSummarize:
        CheckSummary(*fleet.TakeSnapshot().fleet);
        break;
      case kKnown: {
        const absl::Duration age = absl::Seconds(in.Byte());
        v1::Hello hello;
        if (!in.Parse(&hello)) break;
        fleet.AddKnownNode(hello, fleet.WallNow() - age);
        changed(false, "AddKnownNode");
        break;
      }
      case kReportOld: {
        const uint8_t index = in.Byte();
        v1::SyncStatus status;
        if (!in.Parse(&status) || model.ever.empty()) break;
        const uint64_t id = model.ever[index % model.ever.size()];
        on_stream(id, fleet.Report(id, status), "Report (any stream)");
        break;
      }
      case kMessage: {
        // What the AgentService reactor does with one message on a stream.
        const int slot = in.Byte() % kSlots;
        v1::AgentMessage message;
        if (!in.Parse(&message)) break;
        if (!model.slot[slot].has_value()) {
          if (!message.has_hello()) break;  // the reactor ends such a stream
          const std::optional<uint64_t> id =
              fleet.Connect(message.hello(), Peer(slot));
          if (id.has_value()) {
            model.Connected(*id, message.hello());
            model.slot[slot] = *id;
          }
          changed(id.has_value(), "Connect (message)");
        } else if (message.has_status()) {
          const uint64_t id = *model.slot[slot];
          const absl::Status accepted = fleet.Report(id, message.status());
          on_stream(id, accepted, "Report (message)");
          if (absl::IsNotFound(accepted)) {  // the reactor ends that stream
            fleet.Disconnect(id);
            model.slot[slot].reset();
            changed(false, "Disconnect (replaced)");
          }
        } else if (message.has_resync_result()) {
          const uint64_t id = *model.slot[slot];
          on_stream(id, fleet.Touch(id, message.resync_result()),
                    "Touch (message)");
        }
        break;
      }
      default:
        break;
    }
    const Registry::Snapshot snapshot = fleet.TakeSnapshot();
    CheckSnapshot(fleet, model, snapshot);
    if (op == kSummarize || op == kSnapshot) CheckSummary(*snapshot.fleet);
  }
  return 0;
}
