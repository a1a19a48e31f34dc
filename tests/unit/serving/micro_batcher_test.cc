#include "serving/micro_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "../ml/ml_test_tables.h"
#include "ml/train.h"

namespace lathe {
namespace {

using ml::Predictor;

std::shared_ptr<Predictor> Model(const std::string& task) {
  Table t = ml::testing::MakeMixedTable(1500, 3, task);
  ml::TrainSpec spec;
  spec.target = t.columns.back().name;
  spec.task = task;
  spec.params = {{"n_estimators", 20}, {"max_depth", 4}};
  spec.nthread = 2;
  auto out = ml::Train(t, spec, nullptr, nullptr);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  auto p = Predictor::Load(out->model_bundle);
  EXPECT_TRUE(p.ok());
  return std::move(p).value();
}

// Rows of the model's own training-like table, encoded.
std::vector<float> Rows(const Predictor& p, int64_t n, uint64_t seed) {
  auto rows = p.EncodeTable(ml::testing::MakeMixedTable(n, seed, p.Task()));
  EXPECT_TRUE(rows.ok());
  return std::move(rows).value();
}

// Waits for `count` callbacks.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  int remaining;
  explicit Latch(int n) : remaining(n) {}
  void Done() {
    std::lock_guard lock(mu);
    if (--remaining == 0) cv.notify_all();
  }
  bool Wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return remaining == 0; });
  }
};

TEST(MicroBatcher, ConcurrentRequestsShareBatchesAndEachGetsItsOwnRowsOutputs) {
  for (const std::string task : {"binary", "multiclass"}) {
    auto model = Model(task);
    const size_t width = model->NumFeatures(), k = model->OutputWidth();
    const std::vector<float> all = Rows(*model, 400, 9);
    std::vector<float> expected(400 * k);
    model->PredictRows(all.data(), 400, expected.data());

    MicroBatcher batcher(model, BatchingOptions{.max_batch_rows = 32, .max_delay_us = 2000});
    std::vector<std::vector<float>> got(200);
    Latch latch(200);
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        for (int r = c; r < 200; r += 8) {
          // Requests of 1 or 3 rows, starting at row 2r.
          const size_t n = r % 2 == 0 ? 1 : 3, first = static_cast<size_t>(2 * r) % 390;
          std::vector<float> rows(all.begin() + first * width, all.begin() + (first + n) * width);
          batcher.Submit(std::move(rows), n, [&, r, n, first](const float* out) {
            got[r].assign(out, out + n * k);
            EXPECT_EQ(std::memcmp(out, expected.data() + first * k, n * k * sizeof(float)), 0) << task << " " << r;
            latch.Done();
          });
        }
      });
    }
    for (auto& t : clients) t.join();
    ASSERT_TRUE(latch.Wait(std::chrono::seconds(10)));
    const Json stats = batcher.ToJson();
    EXPECT_EQ(stats["requests"], 200);
    EXPECT_EQ(stats["rows"], 400);
    EXPECT_LT(stats["batches"].get<int>(), 200) << stats.dump();  // requests were combined
    EXPECT_LE(stats["mean_batch_rows"].get<double>(), 32.0);
    for (const auto& g : got) EXPECT_FALSE(g.empty());
  }
}

TEST(MicroBatcher, ALoneRequestWaitsNoLongerThanTheDelayAndABigOneGoesAlone) {
  auto model = Model("regression");
  const std::vector<float> rows = Rows(*model, 100, 4);
  MicroBatcher batcher(model, BatchingOptions{.max_batch_rows = 16, .max_delay_us = 20000});
  const auto start = std::chrono::steady_clock::now();
  Latch one(1);
  batcher.Submit(std::vector<float>(rows.begin(), rows.begin() + static_cast<long>(model->NumFeatures())), 1,
                 [&](const float*) { one.Done(); });
  ASSERT_TRUE(one.Wait(std::chrono::seconds(5)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(15));   // it waited for company...
  EXPECT_LT(waited, std::chrono::milliseconds(1000)); // ...but not much past the delay
  // 100 rows > max_batch_rows: evaluated at once in one batch of its own.
  Latch big(1);
  std::vector<float> got;
  batcher.Submit(rows, 100, [&](const float* out) {
    got.assign(out, out + 100);
    big.Done();
  });
  ASSERT_TRUE(big.Wait(std::chrono::seconds(5)));
  std::vector<float> expected(100);
  model->PredictRows(rows.data(), 100, expected.data());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(batcher.ToJson()["batches"], 2);
}

TEST(MicroBatcher, DestructionFinishesQueuedRequestsEvenFromItsOwnCallback) {
  auto model = Model("binary");
  const std::vector<float> rows = Rows(*model, 10, 5);
  const std::vector<float> row(rows.begin(), rows.begin() + static_cast<long>(model->NumFeatures()));
  std::atomic<int> answered{0};
  {
    MicroBatcher batcher(model, BatchingOptions{.max_batch_rows = 1000, .max_delay_us = 1000000});
    for (int i = 0; i < 50; ++i) batcher.Submit(row, 1, [&](const float*) { ++answered; });
  }  // a one-second delay, but destruction flushes at once
  EXPECT_EQ(answered.load(), 50);

  // The last owner drops its reference inside a callback: the worker detaches and finishes alone.
  auto owned = std::make_shared<std::shared_ptr<MicroBatcher>>(
      std::make_shared<MicroBatcher>(model, BatchingOptions{.max_batch_rows = 4, .max_delay_us = 100}));
  Latch done(1);
  (*owned)->Submit(row, 1, [owned, &done](const float*) {
    owned->reset();
    done.Done();
  });
  ASSERT_TRUE(done.Wait(std::chrono::seconds(5)));
  owned.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the detached worker exits cleanly
}

}  // namespace
}  // namespace lathe
