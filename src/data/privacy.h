// Privacy primitives on data, with no I/O of their own:
//
//  - SubjectMatcher: finds the rows of one person by the value of an identifier column (subject export and
//    erasure, api/routes_privacy.cc).
//  - The Laplace mechanism and PrivatizeProfile: a differentially private view of a profile (data/profile.h)
//    for publishing.
//
// Matching rules (SubjectMatcher). The value is text, compared with each non-missing cell by the column's
// type:
//   string    byte-for-byte equal (kCaseInsensitive: equal after ASCII lower-casing both; no trimming, no
//             Unicode case folding)
//   integer   the value parses as an integer (surrounding blanks allowed) and is equal: "42" and " 42"
//             match 42, "42.0" and "0x2a" do not
//   float     the value parses as a float and is numerically equal: "1.5" and "1.50" match 1.5; NaN never
//   boolean   the value parses as a boolean (true/false/yes/no/t/f, any case) and is equal
//   datetime  the value parses as an ISO 8601 date/datetime and denotes the same instant
// So a column that is a string in one version and an integer in another (phone numbers, ids) matches the
// same person in both where the text forms agree. Missing cells never match.
//
// Differential privacy (PrivatizeProfile), for neighbouring datasets that differ by one row (added or
// removed). Every published count is a query of L1 sensitivity 1:
//   rows; duplicate_rows; per column: the histogram {non-missing, missing} (booleans {true, false, missing}),
//   distinct, for integer/float columns the histogram {zeros, negatives, positives}, and for string columns
//   whose values may be shown the vector of top-value counts (disjoint values: one row changes one count).
// With k such queries and a total budget ε, each gets ε/k and Laplace noise of scale b = k/ε (basic
// sequential composition: the whole release is ε-DP for the counts). Noisy counts are rounded to integers
// and clamped at 0 (post-processing: no privacy cost). A top value is published only when its noisy count is
// at least the threshold τ = 1 + b·ln(1/(2δ)), so a value held by a single row shows with probability at
// most δ. Caveat, stated in the output too: the candidate values are the exact profile's top values, a
// data-dependent selection when a column has more distinct values than the profile lists, so for those
// columns the top values are protected by the threshold but not covered by a formal (ε, δ) guarantee.
// Withheld entirely (not noised): min, max, mean, std, quantiles, numeric histograms (their bin edges come
// from the data), string lengths, semantic kinds, correlations, warnings, and the top values of columns that
// identify people (`identifying_columns`, plus columns the profile saw as identifier/email/phone/id_card).
// Thread-safe: pure functions apart from the RandomWords passed in.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"

namespace lathe {

enum class SubjectMatch { kExact, kCaseInsensitive };

// "exact" | "case_insensitive"; kInvalidArgument naming `match` otherwise.
Result<SubjectMatch> ParseSubjectMatch(std::string_view text);
const char* SubjectMatchName(SubjectMatch m);

class SubjectMatcher {
 public:
  SubjectMatcher(std::string value, SubjectMatch mode);

  // Rows (indices into `c`) whose value matches, ascending.
  std::vector<int64_t> MatchingRows(const Column& c) const;
  // True if `text` contains the value as a whole token — not inside a longer run of ASCII letters and
  // digits — ASCII case-insensitively in kCaseInsensitive mode: for raw text such as a quarantined line,
  // where no column type applies ("1" is found in "1,x" and "a;1" but not in "12,x").
  bool Contains(std::string_view text) const;
  // The value as matched: lower-cased in kCaseInsensitive mode.
  const std::string& normalized() const { return normalized_; }

 private:
  std::string value_;
  std::string normalized_;
  SubjectMatch mode_;
  bool has_int_ = false, has_float_ = false, has_bool_ = false, has_datetime_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  bool bool_ = false;
  int64_t datetime_ = 0;
};

// Uniformly random 64-bit words. Implementations below; tests may pass their own.
using RandomWords = std::function<uint64_t()>;
// From the operating system's CSPRNG (common/crypto.h RandomBytes), buffered. Not thread-safe: one per
// caller.
RandomWords SecureRandomWords();
// A keyed deterministic stream: HMAC-SHA256(key, context || counter) in counter mode, a CSPRNG for whoever
// does not know `key`. The same key and context give the same words: a release can be repeated exactly
// instead of drawing fresh noise that averaging could remove.
RandomWords KeyedRandomWords(std::string key, std::string context);

// A uniform double in the open interval (0, 1) from one word (its top 52 bits).
double UniformOpen01(uint64_t word);
// One sample of the Laplace distribution with location 0 and scale b > 0 (inverse CDF).
double SampleLaplace(double scale, const RandomWords& words);
// max(0, round(value + Laplace(scale))): a noisy count.
int64_t NoisyCount(int64_t value, double scale, const RandomWords& words);

struct DpOptions {
  double epsilon = 1.0;  // total budget for one release, > 0
  double delta = 1e-6;   // probability bound for a single row's value to show among top values
  std::set<std::string> identifying_columns;  // top values withheld (e.g. columns tagged "personal")
};

// The differentially private view of `profile` (the JSON of ProfileDataset) described above, with
// "differential_privacy": {"epsilon","mechanism":"laplace","sensitivity":1,"statistics":k,
// "epsilon_per_statistic","scale","delta","top_value_threshold","composition","withheld":[…],"notes":[…]}.
// kInvalidArgument if epsilon or delta is out of range or the profile is malformed.
Result<Json> PrivatizeProfile(const Json& profile, const DpOptions& options, const RandomWords& words);

}  // namespace lathe
