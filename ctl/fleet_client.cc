#include "ctl/fleet_client.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/fleet_stats.h"
#include "common/grpc_status.h"
#include "common/hostport.h"
#include "common/proto_time.h"
#include "google/protobuf/arena.h"

namespace ntpfleet::ctl {
namespace {

// A Timestamp field as a time, InfinitePast when absent (never heard from:
// older than anything).
absl::Time TimeOr(bool has, const google::protobuf::Timestamp& t) {
  return has ? FromProto(t) : absl::InfinitePast();
}

// CONNECTED > STALE > DISCONNECTED (and anything else).
int ConnectionRank(v1::ConnectionState state) {
  switch (state) {
    case v1::CONNECTION_STATE_CONNECTED:
      return 2;
    case v1::CONNECTION_STATE_STALE:
      return 1;
    default:
      return 0;
  }
}

v1::ConnectionState FromRank(int rank, v1::ConnectionState own) {
  if (rank <= ConnectionRank(own)) return own;
  return rank == 2 ? v1::CONNECTION_STATE_CONNECTED
                   : v1::CONNECTION_STATE_STALE;
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

std::string DidNotAnswer(const std::string& address, const absl::Status& s) {
  return absl::StrCat("controller ", address, " did not answer: ", s.message());
}

// Whether `node` is selected by `selector` (as the controller's Select: all,
// or a name listed, or the label "key=value" among its Hello's labels).
bool Selects(const v1::NodeSelector& selector, const v1::Node& node) {
  if (selector.all()) return true;
  for (const std::string& n : selector.names()) {
    if (n == node.name()) return true;
  }
  if (selector.label().empty()) return false;
  const std::pair<std::string, std::string> kv =
      absl::StrSplit(selector.label(), absl::MaxSplits('=', 1));
  auto it = node.hello().labels().find(kv.first);
  return it != node.hello().labels().end() && it->second == kv.second;
}

// The host of one --controller item, as ParseHostPort left it: an IPv6
// address must be one (and in brackets, which ParseHostPort required), any
// other host a name or IPv4 address. gRPC would take "[:::]:1" or "a b:1" and
// fail only on the first call, with "DNS resolution failed".
absl::Status CheckControllerHost(absl::string_view item,
                                 const std::string& host,
                                 absl::string_view what) {
  absl::string_view bare = item;
  for (absl::string_view prefix : {"dns:///", "ipv4:", "ipv6:"}) {
    if (absl::ConsumePrefix(&bare, prefix)) break;
  }
  if (absl::StartsWith(bare, "[")) {
    // A zone ("fe80::1%eth0") is gRPC's to resolve; the address before it is
    // checked.
    const std::string address = host.substr(0, host.find('%'));
    in6_addr v6;
    if (inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": '", absl::CEscape(item), "': '", absl::CEscape(host),
          "' is not an IPv6 address (brackets are for those, as in "
          "[::1]:7123); a host name or IPv4 address goes without them"));
    }
    return absl::OkStatus();
  }
  if (!IsHostName(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": '", absl::CEscape(item), "': '", absl::CEscape(host),
        "' is not a host name or IPv4 address"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseControllerList(
    absl::string_view flag, absl::string_view what) {
  std::vector<std::string> out;
  std::vector<HostPort> seen;
  for (absl::string_view item : absl::StrSplit(flag, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": '", flag,
          "' has an empty address; write HOST:PORT[,HOST:PORT...]"));
    }
    absl::StatusOr<HostPort> at = ParseHostPort(item, what);
    if (!at.ok()) return at.status();
    if (absl::Status host = CheckControllerHost(item, at->host, what);
        !host.ok()) {
      return host;
    }
    for (const HostPort& s : seen) {
      if (s.port == at->port &&
          absl::AsciiStrToLower(s.host) == absl::AsciiStrToLower(at->host)) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": ", item, " is given twice"));
      }
    }
    seen.push_back(*at);
    out.emplace_back(item);
  }
  if (out.size() > static_cast<size_t>(kMaxCtlControllers)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": at most ", kMaxCtlControllers,
                     " controllers, not ", out.size()));
  }
  return out;
}

// --- merges ------------------------------------------------------------------

bool Fresher(const v1::Node& a, const v1::Node& b) {
  const absl::Time seen_a = TimeOr(a.has_last_seen(), a.last_seen());
  const absl::Time seen_b = TimeOr(b.has_last_seen(), b.last_seen());
  if (seen_a != seen_b) return seen_a > seen_b;
  const absl::Time sampled_a =
      a.has_status()
          ? TimeOr(a.status().has_sampled_at(), a.status().sampled_at())
          : absl::InfinitePast();
  const absl::Time sampled_b =
      b.has_status()
          ? TimeOr(b.status().has_sampled_at(), b.status().sampled_at())
          : absl::InfinitePast();
  return sampled_a > sampled_b;
}

std::vector<std::string> MergeFleets(const std::vector<ControllerFleet>& fleets,
                                     v1::Fleet* out) {
  out->Clear();
  std::vector<std::string> notes;
  if (fleets.empty()) return notes;
  if (fleets.size() == 1) {
    *out = *fleets[0].fleet;
    return notes;
  }
  // The threshold: the smallest (the strictest flags), said when they differ.
  absl::Duration threshold = absl::InfiniteDuration();
  absl::Time as_of = absl::InfinitePast();
  std::vector<std::string> thresholds;
  std::set<absl::Duration> distinct;
  for (const ControllerFleet& f : fleets) {
    const absl::Duration t = FromProto(f.fleet->threshold());
    threshold = std::min(threshold, t);
    distinct.insert(t);
    thresholds.push_back(absl::StrCat(f.address, " ", absl::FormatDuration(t)));
    as_of = std::max(as_of, TimeOr(f.fleet->has_as_of(), f.fleet->as_of()));
  }
  if (distinct.size() > 1) {
    notes.push_back(absl::StrCat("the controllers' skew thresholds differ (",
                                 absl::StrJoin(thresholds, ", "),
                                 "): nodes are flagged against the "
                                 "smallest, ",
                                 absl::FormatDuration(threshold)));
  }

  // Per name: which controller's entries win, and the best connection state
  // each controller has for it.
  struct Group {
    size_t winner = 0;
    const v1::Node* freshest = nullptr;
    std::vector<int> rank;  // per controller; -1: not listed there
  };
  std::map<std::string, Group> groups;
  for (size_t f = 0; f < fleets.size(); ++f) {
    for (const v1::Node& node : fleets[f].fleet->nodes()) {
      Group& g = groups[node.name()];
      if (g.rank.empty()) g.rank.assign(fleets.size(), -1);
      g.rank[f] = std::max(g.rank[f], ConnectionRank(node.connection()));
      // Strictly fresher: on a tie the controller given first keeps it.
      if (g.freshest == nullptr || Fresher(node, *g.freshest)) {
        g.freshest = &node;
        g.winner = f;
      }
    }
  }
  out->mutable_nodes()->Reserve(static_cast<int>(groups.size()));
  for (const auto& [name, g] : groups) {
    int others = -1;  // the best state any OTHER controller has for the name
    for (size_t f = 0; f < g.rank.size(); ++f) {
      if (f != g.winner) others = std::max(others, g.rank[f]);
    }
    // All the winner's entries of the name (more than one: duplicate_name).
    for (const v1::Node& node : fleets[g.winner].fleet->nodes()) {
      if (node.name() != name) continue;
      v1::Node* merged = out->add_nodes();
      *merged = node;
      merged->set_connection(FromRank(others, node.connection()));
    }
  }
  if (as_of != absl::InfinitePast()) SetTimestamp(as_of, out->mutable_as_of());
  ComputeFleetStats(threshold, out);
  CarryCrosscheckFields(fleets, out);
  return notes;
}

void CarryCrosscheckFields(const std::vector<ControllerFleet>& fleets,
                           v1::Fleet* out) {
  // The freshest snapshot that has the value: each controller solves its own
  // mesh, and mixing one's p50 with another's p99 would describe no solve.
  auto freshest_with = [&fleets](auto has) -> const v1::Fleet* {
    const v1::Fleet* best = nullptr;
    for (const ControllerFleet& f : fleets) {
      if (!has(*f.fleet)) continue;
      if (best == nullptr || TimeOr(f.fleet->has_as_of(), f.fleet->as_of()) >
                                 TimeOr(best->has_as_of(), best->as_of())) {
        best = f.fleet;  // strictly later: on a tie the one given first
      }
    }
    return best;
  };
  if (const v1::Fleet* f = freshest_with(
          [](const v1::Fleet& x) { return x.has_fleet_bound(); })) {
    *out->mutable_fleet_bound() = f->fleet_bound();
  }
  if (const v1::Fleet* f = freshest_with(
          [](const v1::Fleet& x) { return x.has_mesh_skew_p99(); })) {
    out->clear_mesh_skew_p50();
    out->clear_mesh_skew_max();
    if (f->has_mesh_skew_p50())
      *out->mutable_mesh_skew_p50() = f->mesh_skew_p50();
    *out->mutable_mesh_skew_p99() = f->mesh_skew_p99();
    if (f->has_mesh_skew_max())
      *out->mutable_mesh_skew_max() = f->mesh_skew_max();
  }
  // Counted over the merged nodes, so the count and the rows marked
  // CROSSCHECK agree (each node's verdict came with its freshest entry).
  uint32_t flagged = 0;
  for (const v1::Node& n : out->nodes()) flagged += n.crosscheck().flagged();
  out->set_crosscheck_flagged_count(flagged);
}

CrosscheckPick PickCrosscheck(const std::vector<std::string>& addresses,
                              const std::vector<absl::Status>& statuses,
                              std::vector<v1::CrosscheckResponse>* responses) {
  CrosscheckPick pick;
  std::optional<size_t> chosen;
  // The first (in --controller order) with a solve; else the first answering
  // at all (it says "no solve yet").
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i].ok() && (*responses)[i].has_as_of()) {
      chosen = i;
      break;
    }
  }
  if (!chosen.has_value()) {
    for (size_t i = 0; i < statuses.size(); ++i) {
      if (statuses[i].ok()) {
        chosen = i;
        break;
      }
    }
  }
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (absl::IsUnimplemented(statuses[i]))
      pick.without_rpc.push_back(addresses[i]);
  }
  if (!chosen.has_value()) {
    if (pick.without_rpc.size() == statuses.size()) {
      pick.status = absl::UnimplementedError(absl::StrCat(
          addresses.size() == 1 ? "the controller at " : "the controllers at ",
          absl::StrJoin(addresses, ", "),
          addresses.size() == 1 ? " has" : " have",
          " no crosscheck (FleetService.Crosscheck is UNIMPLEMENTED): "
          "it is older than the mesh (docs/CROSSCHECK.md); upgrade it, or "
          "use `ntpfleetctl status`"));
      return pick;
    }
    // The first error that is not UNIMPLEMENTED: the likelier cause.
    for (const absl::Status& s : statuses) {
      if (!absl::IsUnimplemented(s)) {
        pick.status = s;
        break;
      }
    }
    if (statuses.size() > 1) {
      pick.status = absl::Status(pick.status.code(),
                                 absl::StrCat("no controller answered (",
                                              absl::StrJoin(addresses, ", "),
                                              "): ", pick.status.message()));
    }
    return pick;
  }
  pick.index = *chosen;
  pick.address = addresses[*chosen];
  pick.response = std::move((*responses)[*chosen]);
  return pick;
}

v1::AuditResponse MergeAudits(const std::vector<v1::AuditResponse>& audits,
                              size_t limit) {
  std::vector<const v1::AuditRecord*> records;
  // request id -> the contents (without the row id) already kept.
  std::map<std::string, std::vector<std::string>> kept;
  for (const v1::AuditResponse& a : audits) {
    for (const v1::AuditRecord& r : a.records()) {
      v1::AuditRecord bare = r;
      bare.clear_id();
      std::string content;
      bare.SerializeToString(&content);
      std::vector<std::string>& same_id = kept[r.request_id()];
      if (std::find(same_id.begin(), same_id.end(), content) != same_id.end()) {
        continue;
      }
      same_id.push_back(std::move(content));
      records.push_back(&r);
    }
  }
  std::stable_sort(records.begin(), records.end(),
                   [](const v1::AuditRecord* a, const v1::AuditRecord* b) {
                     const absl::Time ta = TimeOr(a->has_time(), a->time());
                     const absl::Time tb = TimeOr(b->has_time(), b->time());
                     if (ta != tb) return ta > tb;
                     return a->request_id() > b->request_id();
                   });
  if (limit > 0 && records.size() > limit) records.resize(limit);
  v1::AuditResponse out;
  for (const v1::AuditRecord* r : records) *out.add_records() = *r;
  return out;
}

absl::StatusOr<v1::ResyncResponse> ResyncThroughControllers(
    const std::vector<std::string>& addresses, const v1::ResyncRequest& request,
    const ResyncCalls& calls) {
  if (addresses.size() == 1) return calls.resync(0, request);
  const bool by_names_only =
      !request.selector().all() && request.selector().label().empty();
  // Nodes a controller asked (or judged: rate limited, dry run), per name: all
  // entries of a duplicated name come from the one controller.
  std::map<std::string, std::vector<v1::NodeResyncResult>> served;
  // Nodes reported NOT_CONNECTED so far (the first such report), not yet
  // served: the next controller is asked for them.
  std::map<std::string, v1::NodeResyncResult> not_connected;
  std::vector<std::string> request_ids;
  std::vector<std::string> failures;
  bool asked_any = false;
  for (size_t i = 0; i < addresses.size(); ++i) {
    v1::ResyncRequest req = request;
    std::vector<std::string> names;
    if (asked_any) {
      std::set<std::string> wanted;
      for (const auto& [name, r] : not_connected) wanted.insert(name);
      if (!by_names_only) {
        // Selected nodes this controller holds that no earlier one listed.
        absl::StatusOr<v1::Fleet> fleet = calls.fleet(i);
        if (!fleet.ok()) {
          calls.warn(DidNotAnswer(addresses[i], fleet.status()));
          failures.push_back(addresses[i]);
          continue;
        }
        for (const v1::Node& node : fleet->nodes()) {
          if (ConnectionRank(node.connection()) == 0) continue;
          if (!Selects(request.selector(), node)) continue;
          if (served.count(node.name()) > 0) continue;
          wanted.insert(node.name());
        }
      }
      if (wanted.empty()) break;
      names.assign(wanted.begin(), wanted.end());
      v1::NodeSelector* selector = req.mutable_selector();
      selector->Clear();
      for (const std::string& n : names) selector->add_names(n);
    }
    absl::StatusOr<v1::ResyncResponse> response = calls.resync(i, req);
    if (!response.ok()) {
      calls.warn(DidNotAnswer(addresses[i], response.status()));
      failures.push_back(addresses[i]);
      if (absl::IsDeadlineExceeded(response.status())) {
        // It may have asked some of the nodes before the deadline: asking
        // them again through another controller could resync them twice.
        const std::string why = absl::StrCat(
            "controller ", addresses[i],
            " did not answer in time and may have asked this node; not asked "
            "again through another controller (see `ntpfleetctl audit`)");
        if (!asked_any) {
          return absl::DeadlineExceededError(absl::StrCat(
              "controller ", addresses[i],
              " did not answer in time and may have asked the nodes; they "
              "are not asked again through another controller (see "
              "`ntpfleetctl audit`)"));
        }
        for (const std::string& n : names) {
          v1::NodeResyncResult r;
          r.set_node(n);
          r.set_controller(addresses[i]);
          r.mutable_result()->set_outcome(v1::RESYNC_OUTCOME_TIMED_OUT);
          r.mutable_result()->set_error(why);
          served[n].push_back(std::move(r));
          not_connected.erase(n);
        }
        break;
      }
      continue;
    }
    asked_any = true;
    request_ids.push_back(response->request_id());
    std::map<std::string, std::vector<v1::NodeResyncResult>> now_served;
    for (v1::NodeResyncResult& r : *response->mutable_results()) {
      r.set_controller(addresses[i]);
      if (served.count(r.node()) > 0) continue;  // cannot happen: not asked
      if (r.result().outcome() == v1::RESYNC_OUTCOME_NOT_CONNECTED) {
        not_connected.emplace(r.node(), r);  // keeps the first report
      } else {
        now_served[r.node()].push_back(r);
      }
    }
    for (auto& [name, results] : now_served) {
      not_connected.erase(name);
      served[name] = std::move(results);
    }
  }
  if (!asked_any) {
    return absl::UnavailableError(absl::StrCat(
        "no controller answered (", absl::StrJoin(failures, ", "), ")"));
  }
  v1::ResyncResponse out;
  out.set_request_id(absl::StrJoin(request_ids, ","));
  for (auto& [name, r] : not_connected) {
    r.mutable_result()->set_error(
        absl::StrCat("not connected to any controller (",
                     absl::StrJoin(addresses, ", "), ")"));
    served[name].push_back(r);
  }
  for (auto& [name, results] : served) {
    for (v1::NodeResyncResult& r : results) *out.add_results() = std::move(r);
  }
  return out;
}

// --- the client --------------------------------------------------------------

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> FleetCredentials(
    const TlsFiles& tls) {
  if (tls.empty()) return std::shared_ptr<grpc::ChannelCredentials>();
  return ClientCredentials(tls, "--tls-cert/--tls-key/--tls-ca");
}

std::unique_ptr<v1::FleetService::Stub> NewFleetStub(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  if (credentials == nullptr) {
    // Plain text: only a controller on loopback (or one started with
    // --insecure) answers it.
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // A fleet of 10 000 nodes with their peers is several MiB: lift gRPC's
  // 4 MiB default for what the controller sends back.
  args.SetMaxReceiveMessageSize(256 << 20);
  return v1::FleetService::NewStub(
      grpc::CreateCustomChannel(address, credentials, args));
}

absl::StatusOr<std::unique_ptr<FleetClient>> FleetClient::Connect(
    absl::string_view controllers, const TlsFiles& tls) {
  absl::StatusOr<std::vector<std::string>> addresses =
      ParseControllerList(controllers);
  if (!addresses.ok()) return addresses.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      FleetCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<FleetClient> client(new FleetClient());
  client->addresses_ = *std::move(addresses);
  for (const std::string& a : client->addresses_) {
    client->stubs_.push_back(NewFleetStub(a, *credentials));
  }
  return client;
}

void FleetClient::Warn(const std::string& line) const {
  if (warn_) {
    warn_(line);
    return;
  }
  std::fprintf(stderr, "ntpfleetctl: %s\n", line.c_str());
}

std::vector<absl::Status> FleetClient::ForEach(
    const std::function<absl::Status(size_t)>& call) {
  std::vector<absl::Status> statuses(stubs_.size());
  if (stubs_.size() == 1) {
    statuses[0] = call(0);
    return statuses;
  }
  std::vector<std::thread> threads;
  for (size_t i = 0; i < stubs_.size(); ++i) {
    threads.emplace_back([&statuses, &call, i] { statuses[i] = call(i); });
  }
  for (std::thread& t : threads) t.join();
  return statuses;
}

absl::Status FleetClient::Report(
    const std::vector<absl::Status>& statuses,
    const std::function<bool(const absl::Status&)>& answered) {
  if (statuses.size() == 1) {
    return answered(statuses[0]) ? absl::OkStatus() : statuses[0];
  }
  std::vector<std::string> failed;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (answered(statuses[i])) continue;
    Warn(DidNotAnswer(addresses_[i], statuses[i]));
    failed.push_back(addresses_[i]);
  }
  if (failed.size() < statuses.size()) return absl::OkStatus();
  // None answered. The first error's code: e.g. every controller refusing
  // the caller's certificate is PermissionDenied, not Unavailable.
  return absl::Status(statuses[0].code(),
                      absl::StrCat("no controller answered (",
                                   absl::StrJoin(failed, ", "), ")"));
}

absl::Status FleetClient::GetFleet(const v1::GetFleetRequest& request,
                                   absl::Duration deadline, v1::Fleet* out) {
  if (!several()) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    return FromGrpcStatus(stubs_[0]->GetFleet(&context, request, out));
  }
  // The answers go on the caller's arena (or one of our own), as *out does.
  std::optional<google::protobuf::Arena> own_arena;
  google::protobuf::Arena* arena = out->GetArena();
  if (arena == nullptr) arena = &own_arena.emplace();
  std::vector<v1::Fleet*> fleets(stubs_.size());
  for (v1::Fleet*& f : fleets) {
    f = google::protobuf::Arena::CreateMessage<v1::Fleet>(arena);
  }
  const std::vector<absl::Status> statuses = ForEach([&](size_t i) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    return FromGrpcStatus(stubs_[i]->GetFleet(&context, request, fleets[i]));
  });
  if (absl::Status s =
          Report(statuses, [](const absl::Status& s) { return s.ok(); });
      !s.ok()) {
    return s;
  }
  std::vector<ControllerFleet> answered;
  for (size_t i = 0; i < stubs_.size(); ++i) {
    if (statuses[i].ok()) answered.push_back({addresses_[i], fleets[i]});
  }
  for (const std::string& note : MergeFleets(answered, out)) Warn(note);
  return absl::OkStatus();
}

absl::Status FleetClient::WatchFleet(
    const v1::WatchFleetRequest& request,
    const std::function<absl::Status(const v1::Fleet&)>& on_update) {
  if (!several()) {
    grpc::ClientContext context;
    auto reader = stubs_[0]->WatchFleet(&context, request);
    v1::Fleet fleet;
    while (reader->Read(&fleet)) {
      if (absl::Status s = on_update(fleet); !s.ok()) {
        context.TryCancel();
        (void)reader->Finish();  // CANCELLED: ours
        return s;
      }
    }
    return FromGrpcStatus(reader->Finish());
  }
  const size_t n = stubs_.size();
  absl::Mutex mu;
  std::vector<std::optional<v1::Fleet>> latest(n);    // guarded by mu
  std::vector<std::optional<absl::Status>> ended(n);  // guarded by mu
  uint64_t version = 0;                               // guarded by mu
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts(n);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    contexts[i] = std::make_unique<grpc::ClientContext>();
    threads.emplace_back([&, i] {
      auto reader = stubs_[i]->WatchFleet(contexts[i].get(), request);
      v1::Fleet fleet;
      while (reader->Read(&fleet)) {
        absl::MutexLock lock(&mu);
        latest[i] = std::move(fleet);
        fleet = v1::Fleet();
        ++version;
      }
      const absl::Status s = FromGrpcStatus(reader->Finish());
      absl::MutexLock lock(&mu);
      latest[i].reset();
      ended[i] = s.ok() ? absl::UnavailableError("the stream ended") : s;
      ++version;
    });
  }
  uint64_t seen = 0;
  std::vector<bool> named(n, false);
  bool noted = false;  // notes (thresholds differ) once, not on every frame
  while (true) {
    std::vector<v1::Fleet> fleets;
    std::vector<std::string> addresses;
    size_t open = 0;
    {
      absl::MutexLock lock(&mu);
      auto changed = [&version, &seen] { return version != seen; };
      mu.Await(absl::Condition(&changed));
      seen = version;
      for (size_t i = 0; i < n; ++i) {
        if (ended[i].has_value()) {
          if (!named[i]) {
            Warn(DidNotAnswer(addresses_[i], *ended[i]));
            named[i] = true;
          }
          continue;
        }
        ++open;
        if (latest[i].has_value()) {
          fleets.push_back(*latest[i]);
          addresses.push_back(addresses_[i]);
        }
      }
    }
    if (open == 0) break;
    if (fleets.empty()) continue;
    std::vector<ControllerFleet> answered;
    for (size_t i = 0; i < fleets.size(); ++i) {
      answered.push_back({addresses[i], &fleets[i]});
    }
    v1::Fleet merged;
    const std::vector<std::string> notes = MergeFleets(answered, &merged);
    if (!noted) {
      for (const std::string& note : notes) Warn(note);
      noted = !notes.empty();
    }
    if (absl::Status s = on_update(merged); !s.ok()) {
      for (const auto& context : contexts) context->TryCancel();
      for (std::thread& t : threads) t.join();
      return s;
    }
  }
  for (std::thread& t : threads) t.join();
  return absl::UnavailableError(
      absl::StrCat("every controller's stream ended (",
                   absl::StrJoin(addresses_, ", "), ")"));
}

absl::StatusOr<v1::Node> FleetClient::GetNode(const std::string& name,
                                              absl::Duration deadline) {
  std::vector<v1::Node> nodes(stubs_.size());
  const std::vector<absl::Status> statuses = ForEach([&](size_t i) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    v1::GetNodeRequest request;
    request.set_name(name);
    return FromGrpcStatus(stubs_[i]->GetNode(&context, request, &nodes[i]));
  });
  // NotFound is an answer: that controller does not know the node.
  if (absl::Status s = Report(
          statuses,
          [](const absl::Status& s) { return s.ok() || absl::IsNotFound(s); });
      !s.ok()) {
    return s;
  }
  const v1::Node* freshest = nullptr;
  int best = -1;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!statuses[i].ok()) continue;
    best = std::max(best, ConnectionRank(nodes[i].connection()));
    if (freshest == nullptr || Fresher(nodes[i], *freshest)) {
      freshest = &nodes[i];
    }
  }
  if (freshest == nullptr) {
    // Every controller that answered said NotFound: the first one's words.
    for (const absl::Status& s : statuses) {
      if (absl::IsNotFound(s)) return s;
    }
  }
  v1::Node out = *freshest;
  out.set_connection(FromRank(best, out.connection()));
  return out;
}

absl::StatusOr<v1::HistoryResponse> FleetClient::History(
    const v1::HistoryRequest& request, absl::Duration deadline) {
  std::vector<v1::HistoryResponse> responses(stubs_.size());
  const std::vector<absl::Status> statuses = ForEach([&](size_t i) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    return FromGrpcStatus(stubs_[i]->History(&context, request, &responses[i]));
  });
  // A controller that does not know the node answered too (NOT_FOUND): the
  // node may report only to the others.
  if (absl::Status s = Report(
          statuses,
          [](const absl::Status& s) { return s.ok() || absl::IsNotFound(s); });
      !s.ok()) {
    return s;
  }
  // The fleet's skew: the first that answers. One node's: the controller with
  // the most points for it (the one it reported to longest).
  std::optional<size_t> best;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (!statuses[i].ok()) continue;
    if (!best.has_value() ||
        responses[i].node_points_size() > responses[*best].node_points_size()) {
      best = i;
    }
  }
  if (best.has_value()) return std::move(responses[*best]);
  for (const absl::Status& s : statuses) {
    if (absl::IsNotFound(s)) return s;
  }
  return absl::InternalError("no history");  // Report returned an error
}

CrosscheckPick FleetClient::Crosscheck(absl::Duration deadline) {
  std::vector<v1::CrosscheckResponse> responses(stubs_.size());
  const std::vector<absl::Status> statuses = ForEach([&](size_t i) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    return FromGrpcStatus(stubs_[i]->Crosscheck(
        &context, v1::CrosscheckRequest(), &responses[i]));
  });
  CrosscheckPick pick = PickCrosscheck(addresses_, statuses, &responses);
  if (pick.status.ok() && several()) {
    for (size_t i = 0; i < statuses.size(); ++i) {
      if (!statuses[i].ok() && !absl::IsUnimplemented(statuses[i])) {
        Warn(DidNotAnswer(addresses_[i], statuses[i]));
      }
    }
  }
  return pick;
}

absl::StatusOr<v1::AuditResponse> FleetClient::Audit(
    const v1::AuditRequest& request, absl::Duration deadline) {
  std::vector<v1::AuditResponse> responses(stubs_.size());
  const std::vector<absl::Status> statuses = ForEach([&](size_t i) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    return FromGrpcStatus(stubs_[i]->Audit(&context, request, &responses[i]));
  });
  if (absl::Status s =
          Report(statuses, [](const absl::Status& s) { return s.ok(); });
      !s.ok()) {
    return s;
  }
  if (!several()) return std::move(responses[0]);
  std::vector<v1::AuditResponse> answered;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i].ok()) answered.push_back(std::move(responses[i]));
  }
  // The controller's own default when no limit is asked for.
  return MergeAudits(answered, request.limit() > 0 ? request.limit() : 100);
}

absl::Status FleetClient::Forget(const std::string& name,
                                 absl::Duration deadline) {
  const std::vector<absl::Status> statuses = ForEach([&](size_t i) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    v1::ForgetRequest request;
    request.set_name(name);
    v1::ForgetResponse response;
    return FromGrpcStatus(stubs_[i]->Forget(&context, request, &response));
  });
  if (!several()) return statuses[0];
  size_t forgot = 0;
  std::vector<std::string> left;  // controllers that may still list it
  absl::Status first_error;
  const absl::Status* first_not_found = nullptr;
  for (size_t i = 0; i < statuses.size(); ++i) {
    const absl::Status& s = statuses[i];
    if (s.ok()) {
      ++forgot;
    } else if (absl::IsNotFound(s)) {
      if (first_not_found == nullptr) first_not_found = &s;
    } else {
      Warn(absl::IsFailedPrecondition(s)
               ? absl::StrCat("controller ", addresses_[i],
                              " refused: ", s.message())
               : DidNotAnswer(addresses_[i], s));
      left.push_back(addresses_[i]);
      if (first_error.ok()) first_error = s;
    }
  }
  if (!left.empty()) {
    return absl::Status(
        first_error.code(),
        absl::StrCat(
            name, " is not forgotten everywhere: ", absl::StrJoin(left, ", "),
            " may still list it (forgotten by ", forgot,
            " controller(s)); run forget again when the cause above "
            "is fixed"));
  }
  if (forgot == 0 && first_not_found != nullptr) return *first_not_found;
  return absl::OkStatus();
}

absl::StatusOr<v1::ResyncResponse> FleetClient::Resync(
    const v1::ResyncRequest& request, absl::Duration deadline) {
  ResyncCalls calls;
  calls.resync = [this, deadline](size_t i, const v1::ResyncRequest& r)
      -> absl::StatusOr<v1::ResyncResponse> {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(deadline));
    v1::ResyncResponse response;
    if (grpc::Status s = stubs_[i]->Resync(&context, r, &response); !s.ok()) {
      return FromGrpcStatus(s);
    }
    return response;
  };
  calls.fleet = [this](size_t i) -> absl::StatusOr<v1::Fleet> {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(absl::Seconds(10)));
    v1::Fleet fleet;
    // Not a summary: --label needs each node's labels.
    if (grpc::Status s =
            stubs_[i]->GetFleet(&context, v1::GetFleetRequest(), &fleet);
        !s.ok()) {
      return FromGrpcStatus(s);
    }
    return fleet;
  };
  calls.warn = [this](const std::string& line) { Warn(line); };
  return ResyncThroughControllers(addresses_, request, calls);
}

}  // namespace ntpfleet::ctl
