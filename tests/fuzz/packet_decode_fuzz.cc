// Fuzz target for the NTP packet decoder: no input may crash it or read out of
// bounds (ASan), and anything it accepts must re-encode to the same octets when
// the encoder accepts it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/types/span.h"
#include "common/ntp/packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ntpfleet::ntp;
  const absl::Span<const uint8_t> bytes(data, size);
  (void)ClassifyPacket(bytes);
  (void)DecodeControlHeader(bytes);
  absl::StatusOr<NtpPacket> packet = DecodePacket(bytes);
  if (!packet.ok()) return 0;
  if (packet->wire_size() != size) std::abort();
  (void)packet->reference_id.ToString(packet->stratum);
  (void)packet->kiss_code();
  absl::StatusOr<std::vector<uint8_t>> again = EncodePacket(*packet);
  if (again.ok() && *again != std::vector<uint8_t>(data, data + size))
    std::abort();
  return 0;
}
