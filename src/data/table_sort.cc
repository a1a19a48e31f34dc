#include "data/table_sort.h"
#include "data/table_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_map>

#include "data/lcol_format.h"

namespace lathe {

namespace {

// Appends chosen rows of tables with the same schema, merging string dictionaries (first use order).
class RowCollector {
 public:
  explicit RowCollector(const Table& schema) : index_(schema.columns.size()) {
    out_.columns.resize(schema.columns.size());
    for (size_t c = 0; c < schema.columns.size(); ++c) {
      out_.columns[c].name = schema.columns[c].name;
      out_.columns[c].type = schema.columns[c].type;
    }
  }
  void Append(const Table& src, const std::vector<int64_t>& rows) {
    for (size_t c = 0; c < src.columns.size(); ++c) {
      const Column& s = src.columns[c];
      Column& d = out_.columns[c];
      std::vector<int32_t> remap(s.type == ColumnType::kString ? s.dict.size() : 0, -1);
      for (int64_t r64 : rows) {
        size_t r = static_cast<size_t>(r64);
        bool v = s.valid[r] != 0;
        d.valid.push_back(v ? 1 : 0);
        switch (s.type) {
          case ColumnType::kInt64:
          case ColumnType::kDatetime: d.i64.push_back(v ? s.i64[r] : 0); break;
          case ColumnType::kFloat64: d.f64.push_back(v ? s.f64[r] : 0.0); break;
          case ColumnType::kBool: d.b.push_back(v ? s.b[r] : 0); break;
          case ColumnType::kString: {
            if (!v) {
              d.codes.push_back(0);
              break;
            }
            size_t k = static_cast<size_t>(s.codes[r]);
            if (remap[k] < 0) {
              auto [it, inserted] = index_[c].try_emplace(s.dict[k], static_cast<int32_t>(d.dict.size()));
              if (inserted) d.dict.push_back(s.dict[k]);
              remap[k] = it->second;
            }
            d.codes.push_back(remap[k]);
            break;
          }
        }
      }
    }
    out_.num_rows += static_cast<int64_t>(rows.size());
  }
  Table Finish() { return std::move(out_); }

 private:
  Table out_;
  std::vector<std::unordered_map<std::string, int32_t>> index_;
};

}  // namespace

Result<Table> SortTable(const Table& t, const std::vector<SortKey>& keys) {
  RETURN_IF_ERROR(ValidateTable(t));
  struct Key {
    const Column* col;
    bool desc;
    std::vector<int32_t> rank;  // strings: dictionary code -> byte order rank
  };
  std::vector<Key> ks;
  for (size_t i = 0; i < keys.size(); ++i) {
    int idx = t.FindColumn(keys[i].column);
    if (idx < 0) {
      return Status(StatusCode::kInvalidArgument, "sort column '" + keys[i].column + "' does not exist")
          .WithDetail(ErrorDetail::Field("sort[" + std::to_string(i) + "].column", "no such column"));
    }
    Key k{&t.columns[static_cast<size_t>(idx)], keys[i].descending, {}};
    if (k.col->type == ColumnType::kString) {
      std::vector<int32_t> order(k.col->dict.size());
      std::iota(order.begin(), order.end(), 0);
      const auto& dict = k.col->dict;
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return dict[static_cast<size_t>(a)] < dict[static_cast<size_t>(b)];
      });
      k.rank.assign(dict.size(), 0);
      // Equal strings (a dictionary may repeat one) share a rank so the sort stays stable among them.
      for (size_t r = 0; r < order.size(); ++r) {
        bool same = r > 0 && dict[static_cast<size_t>(order[r])] == dict[static_cast<size_t>(order[r - 1])];
        k.rank[static_cast<size_t>(order[r])] = same ? k.rank[static_cast<size_t>(order[r - 1])] : static_cast<int32_t>(r);
      }
    }
    ks.push_back(std::move(k));
  }
  std::vector<int64_t> perm(static_cast<size_t>(t.num_rows));
  std::iota(perm.begin(), perm.end(), 0);
  auto cmp_one = [](const Key& k, size_t a, size_t b) -> int {
    const Column& c = *k.col;
    bool va = c.valid[a] != 0, vb = c.valid[b] != 0;
    if (!va || !vb) return va == vb ? 0 : (va ? -1 : 1);  // missing last in both directions
    int r = 0;
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: r = c.i64[a] < c.i64[b] ? -1 : (c.i64[a] > c.i64[b] ? 1 : 0); break;
      case ColumnType::kBool: r = (c.b[a] != 0) - (c.b[b] != 0); break;
      case ColumnType::kFloat64: {
        double x = c.f64[a], y = c.f64[b];
        bool nx = std::isnan(x), ny = std::isnan(y);
        if (nx || ny) return nx == ny ? 0 : (nx ? 1 : -1);  // NaN after numbers in both directions
        r = x < y ? -1 : (x > y ? 1 : 0);
        break;
      }
      case ColumnType::kString: {
        int32_t ra = k.rank[static_cast<size_t>(c.codes[a])], rb = k.rank[static_cast<size_t>(c.codes[b])];
        r = ra < rb ? -1 : (ra > rb ? 1 : 0);
        break;
      }
    }
    return k.desc ? -r : r;
  };
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    for (const Key& k : ks) {
      int r = cmp_one(k, static_cast<size_t>(a), static_cast<size_t>(b));
      if (r != 0) return r < 0;
    }
    return false;
  });
  Table out;
  out.num_rows = t.num_rows;
  for (const Column& c : t.columns) {
    Column d;
    d.name = c.name;
    d.type = c.type;
    d.dict = c.dict;
    d.valid.reserve(perm.size());
    for (int64_t r : perm) d.valid.push_back(c.valid[static_cast<size_t>(r)]);
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime:
        for (int64_t r : perm) d.i64.push_back(c.i64[static_cast<size_t>(r)]);
        break;
      case ColumnType::kFloat64:
        for (int64_t r : perm) d.f64.push_back(c.f64[static_cast<size_t>(r)]);
        break;
      case ColumnType::kBool:
        for (int64_t r : perm) d.b.push_back(c.b[static_cast<size_t>(r)]);
        break;
      case ColumnType::kString:
        for (int64_t r : perm) d.codes.push_back(c.codes[static_cast<size_t>(r)]);
        break;
    }
    out.columns.push_back(std::move(d));
  }
  return out;
}

Result<Table> GatherRows(const Table& t, const std::vector<int64_t>& rows) {
  RETURN_IF_ERROR(ValidateTable(t));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= t.num_rows) {
      return Status(StatusCode::kInvalidArgument, "row index " + std::to_string(rows[i]) + " is out of range [0, " +
                                                      std::to_string(t.num_rows) + ")")
          .WithDetail(ErrorDetail::Field("rows[" + std::to_string(i) + "]", "out of range"));
    }
  }
  RowCollector out(t);
  out.Append(t, rows);
  return out.Finish();
}

Result<Table> SampleRows(const DatasetFile& f, int64_t n, uint64_t seed) {
  if (n < 0) {
    return Status(StatusCode::kInvalidArgument, "sample size must be non-negative")
        .WithDetail(ErrorDetail::Field("n", "must be >= 0"));
  }
  const int64_t total = f.num_rows();
  const int64_t k = std::min(n, total);
  // Algorithm L (Li 1994): a uniform reservoir of k row indices from [0, total) in O(k log(total / k)) draws.
  std::vector<int64_t> chosen(static_cast<size_t>(k));
  std::iota(chosen.begin(), chosen.end(), 0);
  if (k > 0 && k < total) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    auto u = [&] {
      double x = unif(rng);
      return x > 0 ? x : std::numeric_limits<double>::min();
    };
    double w = std::exp(std::log(u()) / static_cast<double>(k));
    int64_t i = k - 1;
    for (;;) {
      double skip = std::floor(std::log(u()) / std::log1p(-w));
      if (!(skip < static_cast<double>(total))) break;
      i += static_cast<int64_t>(skip) + 1;
      if (i >= total) break;
      chosen[static_cast<size_t>(rng() % static_cast<uint64_t>(k))] = i;
      w *= std::exp(std::log(u()) / static_cast<double>(k));
    }
    std::sort(chosen.begin(), chosen.end());
  }
  // Decode only the row groups that hold a chosen row, one at a time.
  Table schema;
  for (const ColumnInfo& ci : f.columns()) {
    Column c;
    c.name = ci.name;
    c.type = ci.type;
    schema.columns.push_back(std::move(c));
  }
  RowCollector out(schema);
  size_t pos = 0;
  while (pos < chosen.size()) {
    int64_t group = chosen[pos] / kLcolRowsPerGroup;
    int64_t first = group * kLcolRowsPerGroup;
    std::vector<int64_t> local;
    while (pos < chosen.size() && chosen[pos] / kLcolRowsPerGroup == group) local.push_back(chosen[pos++] - first);
    ASSIGN_OR_RETURN(Table part, f.ReadRows(first, kLcolRowsPerGroup));
    for (int64_t r : local) {
      if (r >= part.num_rows) return Status::DataLoss("dataset file returned fewer rows than its footer promises");
    }
    out.Append(part, local);
  }
  return out.Finish();
}

}  // namespace lathe
