// ntpfleetctl's view of one or several controllers (`--controller A,B`): asks
// them all at once, each with the command's usual deadline, and merges what
// they answer into one answer, as if from one controller. A controller that
// does not answer is named on stderr ("controller B:7123 did not answer:
// ...") and the rest are still used; only when none answers is the call an
// error. With a single controller nothing is merged or recomputed: the answer
// and the errors are exactly that controller's (the commands print them as
// they always have).
//
// Controllers never talk to each other (docs/CONTROLLER.md "More than one
// controller"); every agent reports to each of its `controller` lines. So
// the same node is usually listed by every controller, and the merge picks,
// per node name:
// - the FRESHEST entry: the latest Node.last_seen (a node never heard from
//   has none, the oldest possible); on equal last_seen the later
//   status.sampled_at (none: the oldest); on a tie still, the controller
//   given first. A name that one controller lists twice (two live agents
//   claiming it: duplicate_name) is taken with all its entries from the
//   controller whose freshest entry wins, so duplicates are neither lost nor
//   multiplied;
// - its connection state: CONNECTED if ANY controller has it CONNECTED, else
//   STALE if any has it STALE, else DISCONNECTED (a node is reachable for
//   resyncs as long as one controller holds its stream);
// and then recomputes the fleet-wide values (skew, max error bound,
// deviations, flags, counts) over the merged nodes with ComputeFleetStats(),
// the function the controller itself uses (common/fleet_stats.h). The
// crosscheck's fleet-wide values (fleet bound, mesh skew) are taken from the
// freshest snapshot that has them (CarryCrosscheckFields). The
// threshold is the controllers' Fleet.threshold; if they differ, the smallest,
// and a note on stderr says so. Fleet.as_of is the latest of the answers.
// Nodes are sorted by name.
//
//   absl::StatusOr<std::unique_ptr<FleetClient>> client =
//       FleetClient::Connect("a:7123,b:7123", tls_files);
//   v1::Fleet fleet;
//   absl::Status s = (*client)->GetFleet(request, absl::Seconds(10), &fleet);
//   if (!s.ok()) return ControllerError(options.controller, s);
//
// Thread safety: one FleetClient per command; its methods are not to be
// called concurrently. The merge functions are pure.
#ifndef NTPFLEET_CTL_FLEET_CLIENT_H_
#define NTPFLEET_CTL_FLEET_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "proto/ntpfleet.grpc.pb.h"
#include "proto/ntpfleet.pb.h"

namespace ntpfleet::ctl {

// The most controllers --controller may name (as an agent's configuration).
inline constexpr int kMaxCtlControllers = 8;

// "a:7123,b:7123" -> {"a:7123", "b:7123"}: comma-separated, spaces around
// each ignored, each checked as HOST:PORT (common/hostport.h) whose host is a
// host name or IPv4 address (common/hostport.h IsHostName), or [IPV6]:PORT
// with a valid IPv6 address in the brackets (gRPC would only fail later, with
// "DNS resolution failed"). InvalidArgument, its message starting with `what`,
// for an empty list or item, a bad address, the same address twice, or more
// than kMaxCtlControllers.
absl::StatusOr<std::vector<std::string>> ParseControllerList(
    absl::string_view flag, absl::string_view what = "--controller");

// A FleetService stub for one controller at `address` (HOST:PORT), plain text
// when `credentials` is null; replies up to 256 MiB (a fleet of thousands of
// nodes with their peers is several MiB).
std::unique_ptr<v1::FleetService::Stub> NewFleetStub(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials);
// The credentials for `tls` (null when empty: plain text, which only a
// controller on loopback or started with --insecure accepts).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> FleetCredentials(
    const TlsFiles& tls);

// --- the merges (pure; tests/ctl/fleet_client_test) -------------------------

// Whether `a` is fresher than `b` (see the top of this file): later
// last_seen, then later status.sampled_at. False for equals.
bool Fresher(const v1::Node& a, const v1::Node& b);

// One controller's answer, as given to the merges; `address` names it.
struct ControllerFleet {
  std::string address;
  const v1::Fleet* fleet = nullptr;
};

// The fleet seen through all of `fleets` (in the --controller order), into
// *out (cleared first; may be on an arena). Returns notes for stderr (the
// thresholds differ), empty when there is nothing to say. With one fleet,
// *out is a copy of it: nothing is recomputed.
std::vector<std::string> MergeFleets(const std::vector<ControllerFleet>& fleets,
                                     v1::Fleet* out);

// The crosscheck fields of the fleets (Fleet.fleet_bound, mesh_skew_*) into
// *out, from the freshest snapshot (latest Fleet.as_of; on a tie the one given
// first) that has each: every controller solves its own mesh, and they are
// not averaged. crosscheck_flagged_count is recounted over out's nodes (each
// node's NodeCrosscheck came with its freshest entry), so that it matches the
// nodes marked. MergeFleets calls it after ComputeFleetStats.
void CarryCrosscheckFields(const std::vector<ControllerFleet>& fleets,
                           v1::Fleet* out);

// `ntpfleetctl crosscheck` through several controllers: the answer of the
// first (in --controller order) that has a solve (CrosscheckResponse.as_of
// set), else of the first that answered at all. Controllers answering
// UNIMPLEMENTED (older than the crosscheck) are listed in `without_rpc`. When
// none answered: `status` is UNIMPLEMENTED with a message that says the
// controller is too old when every one was, else the first other error.
struct CrosscheckPick {
  absl::Status status;  // OK: `response` is controller `index`'s answer
  size_t index = 0;
  std::string address;
  v1::CrosscheckResponse response;
  std::vector<std::string> without_rpc;
};
// statuses[i] and (*responses)[i]: controller addresses[i]'s answer (the
// chosen response is moved out).
CrosscheckPick PickCrosscheck(const std::vector<std::string>& addresses,
                              const std::vector<absl::Status>& statuses,
                              std::vector<v1::CrosscheckResponse>* responses);

// The audit logs of several controllers as one, newest first (by time, then
// request id), at most `limit` records (0: no limit). A record is kept once
// when two controllers return the same request id with the same content
// (apart from the store's row id); records of different requests that happen
// to share an id are both kept.
v1::AuditResponse MergeAudits(const std::vector<v1::AuditResponse>& audits,
                              size_t limit);

// A resync through several controllers, each node through ONE of them (see
// FleetClient::Resync). The calls are injected so tests bring fakes:
// `resync(i, request)` asks controller i; `fleet(i)` is controller i's full
// fleet (needed only for --label and --all, to learn which nodes controller i
// holds that earlier ones did not). `warn` gets the "did not answer" lines.
struct ResyncCalls {
  std::function<absl::StatusOr<v1::ResyncResponse>(size_t,
                                                   const v1::ResyncRequest&)>
      resync;
  std::function<absl::StatusOr<v1::Fleet>(size_t)> fleet;
  std::function<void(const std::string&)> warn;
};
absl::StatusOr<v1::ResyncResponse> ResyncThroughControllers(
    const std::vector<std::string>& addresses, const v1::ResyncRequest& request,
    const ResyncCalls& calls);

// --- the client --------------------------------------------------------------

class FleetClient {
 public:
  // One channel per controller of `controllers` (ParseControllerList), all
  // with the same TLS files (none: plain text); gRPC connects lazily, so
  // errors come with the first call. Fails at once on a bad list or a half or
  // unreadable TLS configuration (never plain text instead).
  static absl::StatusOr<std::unique_ptr<FleetClient>> Connect(
      absl::string_view controllers, const TlsFiles& tls);

  const std::vector<std::string>& addresses() const { return addresses_; }
  bool several() const { return stubs_.size() > 1; }

  // Where the "did not answer" lines and notes go (default: stderr, as
  // "ntpfleetctl: LINE").
  void set_warn(std::function<void(const std::string&)> warn) {
    warn_ = std::move(warn);
  }

  // The merged fleet into *out (which may be on an arena; temporaries go on
  // the same arena).
  absl::Status GetFleet(const v1::GetFleetRequest& request,
                        absl::Duration deadline, v1::Fleet* out);

  // A live fleet: `on_update` gets a fleet each time one arrives. One
  // controller: its stream as is; returns how it ended. Several: one stream
  // each, and on every update the merge of the latest fleet of each
  // controller whose stream is still open; a stream that ends is named and
  // left out (until the command is run again). Returns when every stream has
  // ended, with an error; or, when `on_update` returns an error, at once with
  // that error (the streams cancelled).
  absl::Status WatchFleet(
      const v1::WatchFleetRequest& request,
      const std::function<absl::Status(const v1::Fleet&)>& on_update);

  // The node from every controller that knows it, the freshest (Fresher);
  // with the merged connection state. NotFound when none knows it.
  absl::StatusOr<v1::Node> GetNode(const std::string& name,
                                   absl::Duration deadline);

  // The fleet's skew history of the first controller (in --controller order)
  // that answers: every controller keeps the history of the agents reporting
  // to it, so with every agent reporting to all of them each has the whole
  // fleet's; they are not averaged.
  absl::StatusOr<v1::HistoryResponse> History(const v1::HistoryRequest& request,
                                              absl::Duration deadline);

  // FleetService.Crosscheck of every controller at once, one chosen
  // (PickCrosscheck); the others' failures (not UNIMPLEMENTED) are named.
  CrosscheckPick Crosscheck(absl::Duration deadline);

  // Every controller's audit log, merged (MergeAudits).
  absl::StatusOr<v1::AuditResponse> Audit(const v1::AuditRequest& request,
                                          absl::Duration deadline);

  // Forget on every controller. OK when at least one forgot the node and
  // every other one that answered did not know it. A controller that refuses
  // (the node is still connected to it) makes it an error naming that
  // controller; one that does not answer also (it still lists the node: run
  // forget again when it is back).
  absl::Status Forget(const std::string& name, absl::Duration deadline);

  // Each selected node resynced through ONE controller: the first controller
  // (in --controller order) gets the request as given; the nodes it reports
  // NOT_CONNECTED (or, for names, does not know) go to the next controller
  // by name, and so on; with --label or --all, each next controller also gets
  // the selected nodes that it holds and earlier ones did not list (from its
  // fleet). A node is never asked through two controllers; a node no
  // controller holds is NOT_CONNECTED. Each result's `controller` says which
  // controller served it; results are sorted by node. A controller that does
  // not answer is named and skipped, except a DEADLINE_EXCEEDED: it may have
  // asked its nodes, so the resync stops there with an error rather than ask
  // them again elsewhere. One controller: its response as is.
  absl::StatusOr<v1::ResyncResponse> Resync(const v1::ResyncRequest& request,
                                            absl::Duration deadline);

 private:
  FleetClient() = default;
  // Runs call(i) for every controller at once (a thread each); returns the
  // statuses in controller order.
  std::vector<absl::Status> ForEach(
      const std::function<absl::Status(size_t)>& call);
  // Names the controllers whose status is not OK ("did not answer"), unless
  // there is just one controller; the error when none answered.
  absl::Status Report(const std::vector<absl::Status>& statuses,
                      const std::function<bool(const absl::Status&)>& answered);
  void Warn(const std::string& line) const;

  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<v1::FleetService::Stub>> stubs_;
  std::function<void(const std::string&)> warn_;
};

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_FLEET_CLIENT_H_
