// For tests that a reader refuses a FIFO instead of waiting on it for a writer:
// the read runs on another thread, and a read still blocked after 10 s fails
// the test (and is released by opening the FIFO for writing), so that a broken
// reader fails the test instead of hanging CI.
//
//   ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
//   absl::StatusOr<std::string> text =
//       ReturnsWithoutWaiting(path, [&] { return ReadConfigText(path); });
#ifndef NTPFLEET_TESTS_TESTING_FIFO_H_
#define NTPFLEET_TESTS_TESTING_FIFO_H_

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace ntpfleet::testing {

template <typename Read>
auto ReturnsWithoutWaiting(const std::string& fifo, Read read)
    -> decltype(read()) {
  std::promise<decltype(read())> result;
  std::future<decltype(read())> done = result.get_future();
  std::thread reader([&] { result.set_value(read()); });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "still blocked on the FIFO " << fifo << " after 10 s";
    // A writer that opens and closes at once: the blocked open(2) returns.
    const int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) close(fd);
  }
  reader.join();
  return done.get();
}

}  // namespace ntpfleet::testing

#endif  // NTPFLEET_TESTS_TESTING_FIFO_H_
