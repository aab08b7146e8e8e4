#include "ctl/text_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ntpfleet::ctl {
namespace {

constexpr absl::string_view kColumnGap = "  ";

}  // namespace

size_t Width(absl::string_view s) {
  // A byte that is not a continuation byte (10xxxxxx) starts a code point.
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  }
  return n;
}

absl::string_view CutToWidth(absl::string_view s, size_t width) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) continue;
    if (seen == width) return s.substr(0, i);
    ++seen;
  }
  return s;
}

std::string Paint(absl::string_view text, absl::string_view color,
                  bool enabled) {
  if (!enabled || color.empty() || text.empty()) return std::string(text);
  return absl::StrCat(color, text, kReset);
}

std::string RenderTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<Cell>>& rows,
                        bool color) {
  std::vector<size_t> widths;
  for (const Column& c : columns) {
    widths.push_back(std::max(c.min_width, Width(c.header)));
  }
  for (const std::vector<Cell>& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i].text));
    }
  }
  auto line = [&](const std::vector<Cell>& cells) {
    std::string out;
    for (size_t i = 0; i < columns.size(); ++i) {
      const Cell empty;
      const Cell& cell = i < cells.size() ? cells[i] : empty;
      const std::string pad(widths[i] - Width(cell.text), ' ');
      if (i > 0) absl::StrAppend(&out, kColumnGap);
      if (columns[i].align == Align::kRight) {
        absl::StrAppend(&out, pad, Paint(cell.text, cell.color, color));
      } else {
        absl::StrAppend(&out, Paint(cell.text, cell.color, color), pad);
      }
    }
    out.erase(out.find_last_not_of(' ') + 1);  // npos + 1 == 0: all spaces.
    out.push_back('\n');
    return out;
  };
  std::vector<Cell> header;
  for (const Column& c : columns) header.push_back({std::string(c.header)});
  std::string out = line(header);
  for (const std::vector<Cell>& row : rows) out += line(row);
  return out;
}

}  // namespace ntpfleet::ctl
