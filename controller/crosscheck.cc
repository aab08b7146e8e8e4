#include "controller/crosscheck.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"

namespace ntpfleet::controller::crosscheck {
namespace {

// ---------------------------------------------------------------------------
// Mesh.

// SplitMix64's finaliser: a fixed, well-mixed 64-bit permutation (the same on
// every platform and build, unlike std::hash or absl::Hash).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a over the name's bytes.
uint64_t HashName(absl::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The nodes (indices into names sorted by name) in order r with `salt`.
std::vector<int> Order(const std::vector<uint64_t>& name_hash, uint64_t seed,
                       int r, int salt) {
  const uint64_t key = Mix(seed ^ Mix((static_cast<uint64_t>(r) << 32) ^
                                      static_cast<uint64_t>(salt)));
  std::vector<std::pair<uint64_t, int>> keyed(name_hash.size());
  for (size_t i = 0; i < name_hash.size(); ++i) {
    keyed[i] = {Mix(key ^ name_hash[i]), static_cast<int>(i)};
  }
  // Ties (a 64-bit collision) fall back to the name order: still total.
  std::sort(keyed.begin(), keyed.end());
  std::vector<int> order(keyed.size());
  for (size_t i = 0; i < keyed.size(); ++i) order[i] = keyed[i].second;
  return order;
}

// ---------------------------------------------------------------------------
// Linear algebra for the solver.

// Dense symmetric positive definite m x m (row-major): Cholesky in place (the
// lower triangle becomes L, A = L L^T). False when A is not positive definite
// (cannot happen for a connected component's reduced Laplacian).
bool Cholesky(std::vector<double>& a, int m) {
  for (int j = 0; j < m; ++j) {
    double* rj = &a[static_cast<size_t>(j) * m];
    double d = rj[j];
    for (int k = 0; k < j; ++k) d -= rj[k] * rj[k];
    if (!(d > 0)) return false;
    const double l = std::sqrt(d);
    rj[j] = l;
    for (int i = j + 1; i < m; ++i) {
      double* ri = &a[static_cast<size_t>(i) * m];
      double s = ri[j];
      for (int k = 0; k < j; ++k) s -= ri[k] * rj[k];
      ri[j] = s / l;
    }
  }
  return true;
}

// Solves L L^T x = b with the factor from Cholesky.
std::vector<double> CholeskySolve(const std::vector<double>& l, int m,
                                  std::vector<double> b) {
  for (int i = 0; i < m; ++i) {  // L z = b
    const double* ri = &l[static_cast<size_t>(i) * m];
    double s = b[i];
    for (int k = 0; k < i; ++k) s -= ri[k] * b[k];
    b[i] = s / ri[i];
  }
  for (int i = m - 1; i >= 0; --i) {  // L^T x = z
    double s = b[i];
    for (int k = i + 1; k < m; ++k)
      s -= l[static_cast<size_t>(k) * m + i] * b[k];
    b[i] = s / l[static_cast<size_t>(i) * m + i];
  }
  return b;
}

// diag(A^-1) = squared norms of the columns of L^-1 (A^-1 = L^-T L^-1), each
// column by forward substitution: m^3 / 6 multiply-adds.
std::vector<double> InverseDiagonal(const std::vector<double>& l, int m) {
  std::vector<double> diag(m);
  std::vector<double> x(m);
  for (int j = 0; j < m; ++j) {
    double norm = 0;
    for (int k = j; k < m; ++k) {
      const double* rk = &l[static_cast<size_t>(k) * m];
      double s = k == j ? 1.0 : 0.0;
      for (int q = j; q < k; ++q) s -= rk[q] * x[q];
      x[k] = s / rk[k];
      norm += x[k] * x[k];
    }
    diag[j] = norm;
  }
  return diag;
}

// A component's weighted graph, local indices 0..m-1: neighbour lists with
// the weights of parallel edges summed, and the right-hand side b.
struct Graph {
  int m = 0;
  std::vector<std::vector<std::pair<int, double>>> adj;
  std::vector<double> degree;  // sum of w over the node's edges
  std::vector<double> b;       // sum of w theta: +from, -to
};

// Preconditioned (Jacobi) conjugate gradients on L y = b, with y[fixed] = 0
// when fixed >= 0 (its row and column removed); otherwise L is singular with
// b summing to zero and the answer is one solution (the caller fixes the
// gauge).
std::vector<double> ConjugateGradient(const Graph& g, int fixed) {
  const int m = g.m;
  std::vector<double> y(m, 0.0), r = g.b, z(m), p(m), q(m);
  if (fixed >= 0) r[fixed] = 0;
  auto mul = [&](const std::vector<double>& x, std::vector<double>& out) {
    for (int i = 0; i < m; ++i) {
      if (i == fixed) {
        out[i] = 0;
        continue;
      }
      double s = g.degree[i] * x[i];
      for (const auto& [j, w] : g.adj[i]) {
        if (j != fixed) s -= w * x[j];
      }
      out[i] = s;
    }
  };
  auto dot = [m](const std::vector<double>& a, const std::vector<double>& c) {
    double s = 0;
    for (int i = 0; i < m; ++i) s += a[i] * c[i];
    return s;
  };
  const double bnorm = std::sqrt(dot(r, r));
  if (bnorm == 0) return y;
  for (int i = 0; i < m; ++i) z[i] = i == fixed ? 0 : r[i] / g.degree[i];
  p = z;
  double rz = dot(r, z);
  const int max_iterations = std::max(100, 4 * m);
  for (int it = 0; it < max_iterations; ++it) {
    mul(p, q);
    const double pq = dot(p, q);
    if (!(pq > 0)) break;
    const double alpha = rz / pq;
    for (int i = 0; i < m; ++i) {
      y[i] += alpha * p[i];
      r[i] -= alpha * q[i];
    }
    if (std::sqrt(dot(r, r)) <= 1e-13 * bnorm) break;
    for (int i = 0; i < m; ++i) z[i] = i == fixed ? 0 : r[i] / g.degree[i];
    const double rz_next = dot(r, z);
    const double beta = rz_next / rz;
    rz = rz_next;
    for (int i = 0; i < m; ++i) p[i] = z[i] + beta * p[i];
  }
  return y;
}

struct ComponentSolution {
  std::vector<double> y;            // local
  std::vector<double> uncertainty;  // local, 1 sigma
};

// Dense: the Laplacian with the fixed node's row and column removed (server
// gauge), or L + c 11^T (mean-zero gauge; c = mean degree / m keeps it as
// well scaled as L), whose inverse is L^+ + 11^T / (c m^2).
double ApproximateUncertainty(const Graph& g, int i, int fixed);

ComponentSolution SolveDense(const Graph& g, int fixed) {
  const int m = g.m;
  std::vector<int> unknown;  // local index -> row
  std::vector<int> row(m, -1);
  for (int i = 0; i < m; ++i) {
    if (i == fixed) continue;
    row[i] = static_cast<int>(unknown.size());
    unknown.push_back(i);
  }
  const int u = static_cast<int>(unknown.size());
  std::vector<double> a(static_cast<size_t>(u) * u, 0.0);
  double c = 0;
  if (fixed < 0) {
    c = std::accumulate(g.degree.begin(), g.degree.end(), 0.0) / m / m;
    std::fill(a.begin(), a.end(), c);
  }
  std::vector<double> b(u);
  for (int i = 0; i < m; ++i) {
    if (row[i] < 0) continue;
    const size_t ri = static_cast<size_t>(row[i]) * u;
    a[ri + row[i]] += g.degree[i];
    for (const auto& [j, w] : g.adj[i]) {
      if (row[j] >= 0) a[ri + row[j]] -= w;
    }
    b[row[i]] = g.b[i];
  }
  ComponentSolution out;
  out.y.assign(m, 0.0);
  out.uncertainty.assign(m, 0.0);
  if (u == 0) return out;
  if (!Cholesky(a, u)) {
    // Cannot happen for a connected component; answer with the iterative
    // solution rather than nothing.
    out.y = ConjugateGradient(g, fixed);
    for (int i = 0; i < m; ++i) {
      out.uncertainty[i] = ApproximateUncertainty(g, i, fixed);
    }
    return out;
  }
  const std::vector<double> x = CholeskySolve(a, u, b);
  const std::vector<double> diag = InverseDiagonal(a, u);
  const double correction = fixed < 0 ? 1.0 / (c * m * m) : 0.0;
  for (int k = 0; k < u; ++k) {
    out.y[unknown[k]] = x[k];
    out.uncertainty[unknown[k]] =
        std::sqrt(std::max(0.0, diag[k] - correction));
  }
  return out;
}

// The iterative path's uncertainty: Var(y_i) approximated by the node's own
// term 2 / degree_i (its edges' information, doubled for its neighbours' own
// errors) plus, with a reference, the reference's 1 / degree_ref: what the
// reference's own probes got wrong shifts every node relative to it alike
// (the effective resistance between i and the reference of a well-connected
// graph is about 1 / degree_i + 1 / degree_ref). Without it, a reference
// whose few probes were noisier than most understated every node's error.
double ApproximateUncertainty(const Graph& g, int i, int fixed) {
  if (i == fixed) return 0;
  double var = 2 / g.degree[i];
  if (fixed >= 0) var += 1 / g.degree[fixed];
  return std::sqrt(var);
}

ComponentSolution SolveIterative(const Graph& g, int fixed) {
  ComponentSolution out;
  out.y = ConjugateGradient(g, fixed);
  out.uncertainty.resize(g.m);
  for (int i = 0; i < g.m; ++i) {
    out.uncertainty[i] = ApproximateUncertainty(g, i, fixed);
  }
  return out;
}

int Find(std::vector<int>& parent, int x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];
    x = parent[x];
  }
  return x;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Fmt(double seconds) {
  // Microseconds with one decimal: the scale of LAN clock errors.
  return absl::StrFormat("%+.1fus", seconds * 1e6);
}

void SetSeconds(double s, google::protobuf::Duration* out) {
  SetDuration(absl::Seconds(s), out);
}

}  // namespace

Mesh AssignMesh(const std::vector<MeshNode>& nodes, int probes, uint64_t seed) {
  Mesh mesh;
  std::vector<const MeshNode*> sorted;
  sorted.reserve(nodes.size());
  for (const MeshNode& n : nodes) sorted.push_back(&n);
  std::sort(
      sorted.begin(), sorted.end(),
      [](const MeshNode* a, const MeshNode* b) { return a->name < b->name; });
  const int n = static_cast<int>(sorted.size());
  if (probes <= 0 || n < 2) return mesh;
  auto add = [&](int from, int to) {
    mesh[sorted[from]->name].push_back(
        MeshTarget{sorted[to]->name, sorted[to]->address});
  };
  if (n <= probes + 1) {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        if (i != j) add(i, j);
      }
    }
    return mesh;  // already sorted by target name
  }
  std::vector<uint64_t> name_hash(n);
  for (int i = 0; i < n; ++i) name_hash[i] = HashName(sorted[i]->name);
  const uint64_t un = static_cast<uint64_t>(n);
  absl::flat_hash_set<uint64_t> edges;  // from * n + to
  edges.reserve(static_cast<size_t>(n) * probes);
  std::vector<std::vector<int>> orders;
  bool fallback = false;
  for (int r = 0; r < probes && !fallback; ++r) {
    bool placed = false;
    for (int salt = 0; salt < kMeshTries && !placed; ++salt) {
      std::vector<int> order = Order(name_hash, seed, r, salt);
      bool clash = false;
      for (int p = 0; p < n && !clash; ++p) {
        const uint64_t e = order[p] * un + order[(p + 1) % n];
        clash = edges.contains(e);
      }
      if (clash) continue;
      for (int p = 0; p < n; ++p)
        edges.insert(order[p] * un + order[(p + 1) % n]);
      orders.push_back(std::move(order));
      placed = true;
    }
    fallback = !placed;
  }
  if (fallback) {
    // K shifts of the first order: position p probes p+1 .. p+K, distinct
    // non-zero shifts mod n (n >= K+2), so no ordered pair repeats.
    const std::vector<int> order =
        orders.empty() ? Order(name_hash, seed, 0, 0) : orders.front();
    for (int p = 0; p < n; ++p) {
      for (int s = 1; s <= probes; ++s) add(order[p], order[(p + s) % n]);
    }
  } else {
    for (const std::vector<int>& order : orders) {
      for (int p = 0; p < n; ++p) add(order[p], order[(p + 1) % n]);
    }
  }
  for (auto& [name, targets] : mesh) {
    std::sort(targets.begin(), targets.end(),
              [](const MeshTarget& a, const MeshTarget& b) {
                return a.node < b.node;
              });
  }
  return mesh;
}

std::optional<std::string> ProbeAddress(absl::string_view peer,
                                        uint32_t ntp_port) {
  if (ntp_port == 0 || ntp_port > 65535) return std::nullopt;
  const size_t colon = peer.rfind(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    const std::string host(peer.substr(0, peer.rfind(':')));
    in_addr a4{};
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1) return std::nullopt;
    return absl::StrCat(host, ":", ntp_port);
  }
  if (absl::ConsumePrefix(&peer, "ipv6:")) {
    absl::string_view host = peer.substr(0, peer.rfind(':'));
    // gRPC writes "[::1]", some versions "%5B::1%5D".
    if (!absl::ConsumePrefix(&host, "[") &&
        !absl::ConsumePrefix(&host, "%5B")) {
      return std::nullopt;
    }
    if (!absl::ConsumeSuffix(&host, "]") &&
        !absl::ConsumeSuffix(&host, "%5D")) {
      return std::nullopt;
    }
    std::string h(host);
    const size_t zone = h.find('%');  // a link-local zone: not probeable
    if (zone != std::string::npos) return std::nullopt;
    in6_addr a6{};
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) return std::nullopt;
    // An IPv4 client on a dual-stack socket: probe it over IPv4.
    if (absl::StartsWithIgnoreCase(h, "::ffff:")) {
      const std::string v4 = h.substr(7);
      in_addr a4{};
      if (inet_pton(AF_INET, v4.c_str(), &a4) == 1) {
        return absl::StrCat(v4, ":", ntp_port);
      }
    }
    return absl::StrCat("[", h, "]:", ntp_port);
  }
  return std::nullopt;
}

int64_t KthPairwiseDifference(std::vector<int64_t> v, uint64_t k) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n < 2 || k == 0) return 0;
  // Pairs with v[j] - v[i] <= d.
  auto count = [&](int64_t d) {
    uint64_t c = 0;
    size_t i = 0;
    for (size_t j = 1; j < n; ++j) {
      while (v[j] - v[i] > d) ++i;
      c += j - i;
    }
    return c;
  };
  int64_t lo = 0;
  int64_t hi = v.back() - v.front();
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (count(mid) >= k) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

Solution Solve(const SolveInput& in) {
  Solution s;
  s.as_of = in.as_of;
  const int n = static_cast<int>(in.nodes.size());
  s.nodes.resize(n);
  absl::flat_hash_map<absl::string_view, int> index;
  index.reserve(n);
  for (int i = 0; i < n; ++i) {
    const NodeInput& node = in.nodes[i];
    index.emplace(node.name, i);
    NodeResult& r = s.nodes[i];
    r.name = node.name;
    r.reported = node.reported;
    r.bound = node.bound;
    r.state = node.state;
    r.reason = "not probed by any node yet";
  }

  // The usable edges, and the probe graph's components.
  struct E {
    int from, to;
    double w;
    const Edge* edge;
  };
  std::vector<E> edges;
  edges.reserve(in.edges.size());
  std::vector<int> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  for (const Edge& e : in.edges) {
    const auto f = index.find(e.from);
    const auto t = index.find(e.to);
    if (f == index.end() || t == index.end() || f->second == t->second ||
        !std::isfinite(e.theta) || !std::isfinite(e.delay) || e.delay < 0) {
      continue;
    }
    // Measured before one end's clock settled in its current state: it says
    // nothing about the clock the report now describes.
    const absl::Time settled = std::max(in.nodes[f->second].state_since,
                                        in.nodes[t->second].state_since);
    if (settled != absl::InfinitePast() &&
        e.received_at < settled + kProbeReportDelay) {
      ++s.edges_predating_state;
      continue;
    }
    const double sigma = std::max(e.delay / 2, kMinSigma);
    edges.push_back(E{f->second, t->second, sigma, &e});  // w set below
    const int a = Find(parent, f->second);
    const int b = Find(parent, t->second);
    if (a != b) parent[a] = b;
  }
  // Weights, with sigma floored at the median edge's (kSigmaFloorRatio): the
  // delay is the prober's word, and an edge that claims a near-perfect path
  // would otherwise outweigh the honest ones and drag its ends wherever its
  // offset says (a broken or lying prober). The cost: an edge faster than
  // the median counts only as much as the median one.
  if (!edges.empty()) {
    std::vector<double> sigmas;
    sigmas.reserve(edges.size());
    for (const E& e : edges) sigmas.push_back(e.w);
    std::nth_element(sigmas.begin(), sigmas.begin() + sigmas.size() / 2,
                     sigmas.end());
    const double floor = sigmas[sigmas.size() / 2] / kSigmaFloorRatio;
    for (E& e : edges) {
      const double sigma = std::max(e.w, floor);
      e.w = 1 / (sigma * sigma);
    }
  }
  // probed_by: distinct probers of each node.
  {
    std::vector<std::pair<int, int>> pairs;  // (to, from)
    pairs.reserve(edges.size());
    for (const E& e : edges) pairs.emplace_back(e.to, e.from);
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    for (const auto& p : pairs) ++s.nodes[p.first].probed_by;
  }

  std::vector<bool> in_graph(n, false);
  for (const E& e : edges) in_graph[e.from] = in_graph[e.to] = true;
  // Components: root -> local members (in input order).
  absl::flat_hash_map<int, std::vector<int>> components;
  for (int i = 0; i < n; ++i) {
    if (in_graph[i]) components[Find(parent, i)].push_back(i);
  }
  std::vector<int> local(n, -1);
  std::vector<int> component_of(n, -1);
  std::vector<std::vector<int>> members;
  for (auto& [root, nodes] : components) {
    for (size_t k = 0; k < nodes.size(); ++k) {
      local[nodes[k]] = static_cast<int>(k);
      component_of[nodes[k]] = static_cast<int>(members.size());
    }
    members.push_back(std::move(nodes));
  }
  // Deterministic order (flat_hash_map's is not).
  std::vector<int> by_first(members.size());
  std::iota(by_first.begin(), by_first.end(), 0);
  std::sort(by_first.begin(), by_first.end(),
            [&](int a, int b) { return members[a][0] < members[b][0]; });
  std::vector<Graph> graphs(members.size());
  for (size_t c = 0; c < members.size(); ++c) {
    Graph& g = graphs[c];
    g.m = static_cast<int>(members[c].size());
    g.adj.resize(g.m);
    g.degree.assign(g.m, 0.0);
    g.b.assign(g.m, 0.0);
  }
  for (const E& e : edges) {
    Graph& g = graphs[component_of[e.from]];
    const int f = local[e.from];
    const int t = local[e.to];
    g.degree[f] += e.w;
    g.degree[t] += e.w;
    g.adj[f].emplace_back(t, e.w);
    g.adj[t].emplace_back(f, e.w);
    g.b[f] += e.w * e.edge->theta;
    g.b[t] -= e.w * e.edge->theta;
  }

  std::vector<double> y(n, 0.0);
  std::vector<double> sigma(n, 0.0);
  std::vector<int> reference_of(members.size(), -1);
  // Per component on the median gauge: how many reports the median was taken
  // over (with fewer than kMinMedianGauge, nobody in it is judged).
  std::vector<size_t> median_of(members.size(), 0);
  for (int c : by_first) {
    const std::vector<int>& nodes = members[c];
    Graph& g = graphs[c];
    // Parallel edges (i->j and j->i, or repeats) as one neighbour entry.
    for (auto& list : g.adj) {
      std::sort(list.begin(), list.end());
      size_t w = 0;
      for (size_t k = 0; k < list.size(); ++k) {
        if (w > 0 && list[w - 1].first == list[k].first) {
          list[w - 1].second += list[k].second;
        } else {
          list[w++] = list[k];
        }
      }
      list.resize(w);
    }
    int server = -1;  // global index
    for (int i : nodes) {
      if (in.nodes[i].server &&
          (server < 0 || in.nodes[i].name < in.nodes[server].name)) {
        server = i;
      }
    }
    const int fixed = server >= 0 ? local[server] : -1;
    ComponentSolution cs =
        g.m <= kDenseLimit ? SolveDense(g, fixed) : SolveIterative(g, fixed);
    if (server < 0) {
      // Mean zero first (the iterative answer may be anywhere), then the
      // median gauge.
      const double mean = std::accumulate(cs.y.begin(), cs.y.end(), 0.0) / g.m;
      for (double& v : cs.y) v -= mean;
      std::vector<double> judged, reporting;
      for (int i : nodes) {
        const NodeInput& node = in.nodes[i];
        if (!node.reported.has_value()) continue;
        const double d = *node.reported - cs.y[local[i]];
        reporting.push_back(d);
        if (node.bound.has_value() && s.nodes[i].probed_by > 0) {
          judged.push_back(d);
        }
      }
      median_of[c] = !judged.empty() ? judged.size() : reporting.size();
      const double shift = !judged.empty()      ? Median(judged)
                           : !reporting.empty() ? Median(reporting)
                                                : 0.0;
      for (double& v : cs.y) v += shift;
    } else {
      reference_of[c] = server;
      if (s.reference.empty()) s.reference = in.nodes[server].name;
    }
    for (int i : nodes) {
      y[i] = cs.y[local[i]];
      sigma[i] = cs.uncertainty[local[i]];
    }
    ++s.components;
  }
  // The reference is the server of the first component that has one; the
  // response names one reference, so a second server's component (a split
  // mesh) is on its own gauge too: its reason says so.

  // Each node's edges, for the witnesses below.
  std::vector<std::vector<int>> incident(n);
  for (int k = 0; k < static_cast<int>(edges.size()); ++k) {
    incident[edges[k].from].push_back(k);
    incident[edges[k].to].push_back(k);
  }

  for (int i = 0; i < n; ++i) {
    NodeResult& r = s.nodes[i];
    if (!in_graph[i]) continue;
    const int c = component_of[i];
    const bool is_reference = reference_of[c] == i;
    if (r.probed_by == 0 && !is_reference) {
      r.reason = "not probed by any node yet (it only probes others)";
      continue;
    }
    r.measured = true;
    r.measured_offset = y[i];
    r.uncertainty = sigma[i];
    ++s.measured_count;
    if (r.reported.has_value()) r.disagreement = *r.reported - y[i];
    if (is_reference) {
      r.reason = "the reference";
      continue;
    }
    if (!r.reported.has_value()) {
      r.reason = "no fresh report from it";
      continue;
    }
    if (!r.bound.has_value()) {
      r.reason = "no error bound: not synchronised";
      continue;
    }
    if (r.state != v1::SYNC_STATE_SYNCHRONISED &&
        r.state != v1::SYNC_STATE_HOLDOVER &&
        r.state != v1::SYNC_STATE_LOCAL_CLOCK) {
      r.reason = "not judged while syncing: its clock is being corrected";
      continue;
    }
    if (reference_of[c] < 0 && median_of[c] < kMinMedianGauge) {
      // Offsets relative to the median of too few reports: with two nodes,
      // one lying splits its lie between them and both look wrong.
      r.reason = absl::StrFormat(
          "not judged: in a part of the mesh not linked to the reference, "
          "with %d report(s) to take a median of (at least %d needed to "
          "tell which is wrong)",
          median_of[c], kMinMedianGauge);
      continue;
    }
    r.judged = true;
    const double allowed = *r.bound + 3 * r.uncertainty;
    r.flagged = std::abs(r.disagreement) > allowed;
    r.reason.clear();
    if (r.flagged) {
      // Witnesses: the neighbours whose own edge with this node, read
      // against the neighbour's solved offset, puts its clock beyond its
      // bound too. One node's probes alone do not flag another: a prober
      // that reports a near-zero delay carries weight enough to pull its
      // target's solution wherever it likes (a lying or broken prober), so
      // at least two must agree (or every neighbour, when it has one).
      std::vector<int> witnesses, neighbours;
      for (int k : incident[i]) {
        const E& e = edges[k];
        const int other = e.from == i ? e.to : e.from;
        // theta = y_from - y_to: this node's clock as that edge reads it.
        const double implied =
            e.from == i ? e.edge->theta + y[other] : y[other] - e.edge->theta;
        const double sigma_e = 1 / std::sqrt(e.w);
        const double tolerance =
            *r.bound +
            3 * std::sqrt(sigma_e * sigma_e + sigma[other] * sigma[other]);
        neighbours.push_back(other);
        if (std::abs(*r.reported - implied) > tolerance) {
          witnesses.push_back(other);
        }
      }
      auto distinct = [](std::vector<int>& v) {
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return static_cast<int>(v.size());
      };
      const int needed = std::min(2, distinct(neighbours));
      if (distinct(witnesses) < needed) {
        r.flagged = false;
        r.reason = absl::StrFormat(
            "reports %s, the mesh measures %s +-%s, but %s: not flagged on "
            "fewer than two witnesses",
            Fmt(*r.reported), Fmt(r.measured_offset), Fmt(r.uncertainty),
            witnesses.empty()
                ? std::string("no neighbour's own probe puts it beyond its "
                              "bound")
                : absl::StrCat("only ", in.nodes[witnesses[0]].name,
                               "'s probes put it beyond its bound"));
      }
    }
    if (r.flagged) {
      ++s.flagged_count;
      r.reason = absl::StrFormat(
          "reports %s, the mesh measures %s +-%s (%d probers): %s apart, "
          "beyond its error bound %s + 3 x the uncertainty",
          Fmt(*r.reported), Fmt(r.measured_offset), Fmt(r.uncertainty),
          r.probed_by, Fmt(r.disagreement), Fmt(*r.bound));
    }
    if (reference_of[c] < 0 && !s.reference.empty()) {
      r.reason = absl::StrCat(r.reason, r.reason.empty() ? "" : "; ",
                              "not linked to the reference ", s.reference,
                              " by probes: offsets on the median gauge");
    }
  }

  // Residuals and closure.
  s.edges.reserve(edges.size());
  double sum2 = 0;
  for (const E& e : edges) {
    EdgeResult& er = s.edges.emplace_back();
    er.edge = *e.edge;
    er.residual = e.edge->theta - (y[e.from] - y[e.to]);
    sum2 += er.residual * er.residual;
  }
  if (!edges.empty()) s.closure_rms = std::sqrt(sum2 / edges.size());

  // Pairwise skew of the measured nodes, exact to the nanosecond.
  std::vector<int64_t> ns;
  ns.reserve(s.measured_count);
  for (const NodeResult& r : s.nodes) {
    if (r.measured) ns.push_back(std::llround(r.measured_offset * 1e9));
  }
  if (ns.size() >= 2) {
    const uint64_t m = static_cast<uint64_t>(ns.size());
    const uint64_t pairs = m * (m - 1) / 2;
    // Nearest rank: the ceil(q * pairs)-th smallest.
    const uint64_t k50 = (pairs + 1) / 2;
    const uint64_t k99 = (pairs * 99 + 99) / 100;
    s.p50 = KthPairwiseDifference(ns, std::max<uint64_t>(1, k50)) * 1e-9;
    s.p99 = KthPairwiseDifference(ns, std::min(pairs, k99)) * 1e-9;
    const auto [lo, hi] = std::minmax_element(ns.begin(), ns.end());
    s.max = (*hi - *lo) * 1e-9;
  }
  return s;
}

v1::NodeCrosscheck ToProto(const NodeResult& r, absl::Time as_of) {
  v1::NodeCrosscheck c;
  if (r.measured) {
    SetSeconds(r.measured_offset, c.mutable_measured_offset());
    SetSeconds(r.uncertainty, c.mutable_uncertainty());
    if (r.reported.has_value()) {
      SetSeconds(r.disagreement, c.mutable_disagreement());
    }
  }
  if (r.reported.has_value()) {
    SetSeconds(*r.reported, c.mutable_reported_offset());
  }
  c.set_flagged(r.flagged);
  c.set_probed_by(r.probed_by);
  if (as_of != absl::InfinitePast()) SetTimestamp(as_of, c.mutable_as_of());
  c.set_reason(r.reason);
  return c;
}

v1::CrosscheckResponse ToProto(const Solution& s, bool with_edges) {
  v1::CrosscheckResponse out;
  if (s.as_of != absl::InfinitePast()) {
    SetTimestamp(s.as_of, out.mutable_as_of());
  }
  if (s.p50.has_value()) {
    SetSeconds(*s.p50, out.mutable_pairwise_p50());
    SetSeconds(*s.p99, out.mutable_pairwise_p99());
    SetSeconds(*s.max, out.mutable_pairwise_max());
  }
  SetSeconds(s.closure_rms, out.mutable_closure_rms());
  out.set_reference(s.reference);
  out.set_flagged_count(s.flagged_count);
  out.set_edges_predating_state(static_cast<uint32_t>(s.edges_predating_state));
  out.mutable_nodes()->Reserve(static_cast<int>(s.nodes.size()));
  for (const NodeResult& r : s.nodes) {
    v1::NodeCrosscheckRow* row = out.add_nodes();
    row->set_name(r.name);
    *row->mutable_crosscheck() = ToProto(r, s.as_of);
    if (r.bound.has_value()) SetSeconds(*r.bound, row->mutable_error_bound());
    row->set_state(r.state);
  }
  if (with_edges) {
    out.mutable_edges()->Reserve(static_cast<int>(s.edges.size()));
    for (const EdgeResult& er : s.edges) {
      v1::ProbeEdge* e = out.add_edges();
      e->set_from(er.edge.from);
      e->set_to(er.edge.to);
      SetSeconds(er.edge.theta, e->mutable_offset());
      SetSeconds(er.edge.delay, e->mutable_delay());
      if (er.edge.measured_at != absl::InfinitePast()) {
        SetTimestamp(er.edge.measured_at, e->mutable_measured_at());
      }
      SetSeconds(er.residual, e->mutable_residual());
    }
  }
  return out;
}

}  // namespace ntpfleet::controller::crosscheck
