// Controller databases for tests: fresh paths under $TEST_TMPDIR and a Store
// opened on them (shared by tests/controller's store, writer, service and
// trust tests).
#ifndef NTPFLEET_TESTS_TESTING_STORE_FILES_H_
#define NTPFLEET_TESTS_TESTING_STORE_FILES_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "controller/store.h"
#include "gtest/gtest.h"

namespace ntpfleet::testing {

// `name` under $TEST_TMPDIR (/tmp outside Bazel).
inline std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

// A fresh database path: no leftover (nor its -wal/-shm) from an earlier run.
inline std::string FreshDb(const std::string& name) {
  const std::string path = TmpPath(name);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((path + suffix).c_str());
  }
  return path;
}

// The store at `path`; a test failure (and null) when it cannot be opened.
inline std::unique_ptr<controller::Store> MustOpen(const std::string& path) {
  absl::StatusOr<std::unique_ptr<controller::Store>> store =
      controller::Store::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

}  // namespace ntpfleet::testing

#endif  // NTPFLEET_TESTS_TESTING_STORE_FILES_H_
