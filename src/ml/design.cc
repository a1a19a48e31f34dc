#include "ml/design.h"

#include <algorithm>
#include <map>

namespace lathe::ml {

std::vector<DesignTerm> FitDesignTerms(const float* rows, size_t n, const std::vector<std::string>& types,
                                       size_t max_levels) {
  std::vector<DesignTerm> terms;
  const size_t width = types.size();
  for (size_t f = 0; f < width; ++f) {
    if (types[f] == "c") {
      std::map<float, size_t> counts;
      bool missing = false;
      for (size_t i = 0; i < n; ++i) {
        const float x = rows[i * width + f];
        if (std::isfinite(x) && x >= 0) ++counts[x];
        else missing = true;
      }
      std::vector<std::pair<float, size_t>> levels(counts.begin(), counts.end());
      std::stable_sort(levels.begin(), levels.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      if (levels.size() > max_levels) levels.resize(max_levels);
      if (levels.size() == 1 && !missing && counts.size() == 1) continue;  // constant
      for (const auto& [code, count] : levels) terms.push_back({static_cast<int32_t>(f), 2, code, 0, 1, 0, 0});
      continue;
    }
    double sum = 0, sq = 0;
    size_t valid = 0;
    for (size_t i = 0; i < n; ++i) {
      const float x = rows[i * width + f];
      if (std::isnan(x)) continue;
      sum += x;
      ++valid;
    }
    if (valid == 0) continue;
    const double mean = sum / static_cast<double>(valid);
    for (size_t i = 0; i < n; ++i) {
      const float x = rows[i * width + f];
      if (!std::isnan(x)) sq += (x - mean) * (x - mean);
    }
    const double sd = std::sqrt(sq / static_cast<double>(valid));
    if (sd > 0 && std::isfinite(sd)) terms.push_back({static_cast<int32_t>(f), 0, 0, mean, 1.0 / sd, 0, 0});
    if (valid < n) terms.push_back({static_cast<int32_t>(f), 1, 0, 0, 1, 0, 0});
  }
  return terms;
}

Json DesignTermsJson(const std::vector<DesignTerm>& terms) {
  Json out = Json::array();
  for (const DesignTerm& t : terms) out.push_back({t.feature, t.kind, t.code, t.mean, t.scale, t.center, t.spread});
  return out;
}

Result<std::vector<DesignTerm>> ParseDesignTerms(const Json& terms, size_t width, size_t max_terms,
                                                 const std::string& what) {
  auto bad = [&](const std::string& m) { return Status::InvalidArgument(what + ": " + m); };
  try {
    if (!terms.is_array() || terms.size() > max_terms) return bad("bad terms");
    std::vector<DesignTerm> out;
    for (const Json& t : terms) {
      if (!t.is_array() || t.size() != 7) return bad("bad term");
      DesignTerm term{t[0].get<int32_t>(), t[1].get<int32_t>(), t[2].get<float>(), t[3].get<double>(),
                      t[4].get<double>(),  t[5].get<double>(),  t[6].get<double>()};
      if (term.feature < 0 || static_cast<size_t>(term.feature) >= width || term.kind < 0 || term.kind > 2) {
        return bad("term out of range");
      }
      if (!std::isfinite(term.mean) || !std::isfinite(term.scale) || !std::isfinite(term.center)) {
        return bad("non-finite term");
      }
      out.push_back(term);
    }
    return out;
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

}  // namespace lathe::ml
