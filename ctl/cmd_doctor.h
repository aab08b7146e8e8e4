// `ntpfleetctl doctor`: checks this node's NTP setup and says what to fix (see
// ctl/doctor.h for the checks, kDoctorHelp for the user's view).
#ifndef NTPFLEET_CTL_CMD_DOCTOR_H_
#define NTPFLEET_CTL_CMD_DOCTOR_H_

#include <string>

namespace ntpfleet::ctl {

struct DoctorOptions {
  std::string config = "/etc/ntpfleet/agent.conf";
  std::string socket;  // the agent's control socket
  bool json = false;   // --output json
  // A viewer's certificate, to ask the controller which nodes a silent
  // upstream answers (optional; the agent's own is used otherwise).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
};

// `ntpfleetctl doctor --help`.
extern const char kDoctorHelp[];

// Prints the report; returns 0 (no FAIL), 3 (a check FAILed) or 1 (doctor
// could not run: the config cannot be read).
int RunDoctor(const DoctorOptions& o);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_CMD_DOCTOR_H_
