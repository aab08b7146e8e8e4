// Text tables for ntpfleetctl's terminal output: every column as wide as its
// widest cell (or its minimum), columns two spaces apart, numbers right-aligned
// and text left-aligned, colour around the text only (never the padding, so
// widths do not depend on it), no trailing spaces, every line ending in '\n'.
// Widths are counted in code points, so "µ" keeps the columns aligned (East
// Asian wide characters would not).
//
//   std::vector<ntpfleet::ctl::Column> columns = {{"NODE", Align::kLeft, 0},
//                                                 {"OFFSET", Align::kRight,
//                                                 10}};
//   std::vector<std::vector<Cell>> rows = {{{"web-1"}, {"+312µs", kRed}}};
//   std::cout << RenderTable(columns, rows, /*color=*/isatty(1));
//
// Thread safety: pure functions; safe to call concurrently.
#ifndef NTPFLEET_CTL_TEXT_TABLE_H_
#define NTPFLEET_CTL_TEXT_TABLE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ntpfleet::ctl {

// ANSI colours for Cell::color and Paint().
inline constexpr absl::string_view kRed = "\x1b[31m";
inline constexpr absl::string_view kYellow = "\x1b[33m";
inline constexpr absl::string_view kGreen = "\x1b[32m";
inline constexpr absl::string_view kReset = "\x1b[0m";
inline constexpr absl::string_view kNoColor = "";

enum class Align { kLeft, kRight };

struct Column {
  absl::string_view header;
  Align align;
  size_t min_width;
};

struct Cell {
  std::string text;
  absl::string_view color = kNoColor;
};

// The header line, then one line per row; a row shorter than `columns` is
// padded with empty cells, a longer one is cut. Without `color` the output
// contains no escape sequence at all.
std::string RenderTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<Cell>>& rows, bool color);

// Terminal columns taken by UTF-8 text: one per code point.
size_t Width(absl::string_view s);

// The first `width` code points of s.
absl::string_view CutToWidth(absl::string_view s, size_t width);

// `text` wrapped in `color` and kReset when `enabled` (and neither is empty).
std::string Paint(absl::string_view text, absl::string_view color,
                  bool enabled);

}  // namespace ntpfleet::ctl

#endif  // NTPFLEET_CTL_TEXT_TABLE_H_
