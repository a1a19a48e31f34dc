// Label aggregation for labeling rounds: the consensus label per row (majority; a tie gives none) and
// agreement between labelers on rows labeled more than once (share of rows where every label agrees, and
// Cohen's kappa for the two labelers who share the most rows). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"

namespace lathe {

struct RowLabel {
  int64_t row = 0;
  std::string labeler;
  std::string label;
};

// Majority label per row; rows whose top labels tie are left out.
std::map<int64_t, std::string> ConsensusLabels(const std::vector<RowLabel>& labels);

// {"rows_labeled_twice": N, "percent_agreement": p, "cohens_kappa": {"labelers":[a,b],"rows":n,"value":k|null}}
// (the last two only when N > 0; kappa is null when chance agreement is 1).
Json LabelAgreement(const std::vector<RowLabel>& labels);

}  // namespace lathe
