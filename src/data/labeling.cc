#include "data/labeling.h"

#include <algorithm>
#include <set>

namespace lathe {

std::map<int64_t, std::string> ConsensusLabels(const std::vector<RowLabel>& labels) {
  std::map<int64_t, std::map<std::string, int>> votes;
  for (const auto& l : labels) votes[l.row][l.label]++;
  std::map<int64_t, std::string> out;
  for (const auto& [row, counts] : votes) {
    int best = 0;
    std::string label;
    bool tie = false;
    for (const auto& [lab, n] : counts) {
      if (n > best) {
        best = n;
        label = lab;
        tie = false;
      } else if (n == best) {
        tie = true;
      }
    }
    if (!tie) out[row] = label;
  }
  return out;
}

Json LabelAgreement(const std::vector<RowLabel>& labels) {
  std::map<int64_t, std::map<std::string, std::string>> by_row;  // row -> labeler -> label
  for (const auto& l : labels) by_row[l.row][l.labeler] = l.label;
  int64_t multi = 0, agree = 0;
  std::map<std::pair<std::string, std::string>, int64_t> shared;
  for (const auto& [row, m] : by_row) {
    if (m.size() < 2) continue;
    ++multi;
    std::set<std::string> distinct;
    for (const auto& [who, lab] : m) distinct.insert(lab);
    agree += distinct.size() == 1;
    for (auto a = m.begin(); a != m.end(); ++a) {
      for (auto b = std::next(a); b != m.end(); ++b) shared[{a->first, b->first}]++;
    }
  }
  Json out = {{"rows_labeled_twice", multi}};
  if (multi == 0) return out;
  out["percent_agreement"] = static_cast<double>(agree) / static_cast<double>(multi);
  auto best = std::max_element(shared.begin(), shared.end(),
                               [](const auto& x, const auto& y) { return x.second < y.second; });
  const std::string u1 = best->first.first;
  const std::string u2 = best->first.second;
  std::map<std::string, int64_t> c1, c2;
  int64_t n = 0, same = 0;
  for (const auto& [row, m] : by_row) {
    auto a = m.find(u1), b = m.find(u2);
    if (a == m.end() || b == m.end()) continue;
    ++n;
    same += a->second == b->second;
    c1[a->second]++;
    c2[b->second]++;
  }
  const double dn = static_cast<double>(n);
  double po = static_cast<double>(same) / dn, pe = 0;
  for (const auto& [lab, k] : c1) {
    auto it = c2.find(lab);
    if (it != c2.end()) pe += (static_cast<double>(k) / dn) * (static_cast<double>(it->second) / dn);
  }
  out["cohens_kappa"] = {{"labelers", {u1, u2}}, {"rows", n},
                         {"value", pe >= 1.0 ? Json(nullptr) : Json((po - pe) / (1.0 - pe))}};
  return out;
}

}  // namespace lathe
