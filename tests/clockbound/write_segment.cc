// Writes one ClockBound segment with our writer, with the values
// protocol_reader_test.sh expects: write_segment PATH [simulated]. Every field
// has a distinct value, so a reader that takes one field for another fails.
#include <cstdio>
#include <string>

#include "clockbound/segment.h"
#include "clockbound/writer.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto w = ntpfleet::clockbound::Writer::Open(argv[1]);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", std::string(w.status().message()).c_str());
    return 1;
  }
  ntpfleet::clockbound::Contents c;
  c.as_of = {1234, 567'000'000};
  c.void_after = {2234, 567'000'001};
  c.bound_ns = 4'242'424;
  c.disruption_marker = 0x0102030405060708u;
  c.max_drift_ppb = 15'123;
  c.status = ntpfleet::clockbound::ClockStatus::kFreeRunning;
  c.disruption_support = false;
  if (argc > 2 && std::string(argv[2]) == "simulated") {
    c.simulated = true;
    c.clock_minus_monotonic_ns = -987'654'321'012;
  }
  (*w)->Write(c);
  (*w)->Write(c);  // generation 4
  return 0;
}
