#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/crypto.h"
#include "jobs/job_runner.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-jobs-" + RandomHex(6));
    fs::create_directories(dir_);
    store_ = std::move(OpenSqliteStore((dir_ / "meta.db").string())).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  JobRecord WaitTerminal(const std::string& id) {
    for (int i = 0; i < 500; ++i) {
      auto j = store_->GetJob(id);
      if (j.ok() && IsTerminal(j->state)) return *j;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(JobRunnerTest, RunsSucceedsFailsAndReportsProgress) {
  JobRunner runner(store_.get(), 2);
  runner.Register("add", {.handler = [](JobContext& ctx) -> Result<Json> {
                            ctx.Progress(0.5, "halfway");
                            ctx.Log("adding");
                            int64_t a = ctx.payload().value("a", 0), b = ctx.payload().value("b", 0);
                            if (a < 0) return Status::InvalidArgument("a must be >= 0");
                            return Json{{"sum", a + b}};
                          }});
  ASSERT_TRUE(runner.Start().ok());
  auto ok = runner.Submit("add", "default", {{"a", 2}, {"b", 3}}, "tester");
  auto bad = runner.Submit("add", "default", {{"a", -1}}, "tester");
  ASSERT_TRUE(ok.ok() && bad.ok());
  JobRecord done = WaitTerminal(ok->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.result["sum"], 5);
  EXPECT_DOUBLE_EQ(done.progress, 1.0);
  EXPECT_EQ(store_->GetJobLog(ok->id, 10)->at(0).second, "adding");
  JobRecord failed = WaitTerminal(bad->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.error, "a must be >= 0");
  EXPECT_EQ(runner.Submit("nope", "default", {}, "t").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(JobRunnerTest, CancelStopsARunningJobBetweenSteps) {
  JobRunner runner(store_.get(), 1);
  std::atomic<int> steps{0};
  runner.Register("loop", {.handler = [&](JobContext& ctx) -> Result<Json> {
                             for (int i = 0; i < 10000; ++i) {
                               if (ctx.Cancelled()) return Status::Cancelled("cancelled");
                               steps++;
                               std::this_thread::sleep_for(std::chrono::milliseconds(5));
                             }
                             return Json::object();
                           }});
  ASSERT_TRUE(runner.Start().ok());
  auto job = runner.Submit("loop", "default", {}, "t");
  ASSERT_TRUE(job.ok());
  while (steps.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(runner.Cancel(job->id).ok());
  JobRecord done = WaitTerminal(job->id);
  EXPECT_EQ(done.state, JobState::kCancelled);
  EXPECT_LT(steps.load(), 10000);
}

TEST_F(JobRunnerTest, OrphanedRunningJobIsFailedAtStart) {
  JobRecord j{.id = "job_orphan", .kind = "x", .project = "default", .created_at = 1};
  ASSERT_TRUE(store_->CreateJob(j).ok());
  ASSERT_TRUE(store_->ClaimNextJob(2).ok());  // now "running", as if a process died mid-job
  JobRunner runner(store_.get(), 1);
  ASSERT_TRUE(runner.Start().ok());
  auto after = store_->GetJob("job_orphan");
  EXPECT_EQ(after->state, JobState::kFailed);
  EXPECT_NE(after->error.find("interrupted"), std::string::npos);
}

TEST_F(JobRunnerTest, StopInterruptsRunningJobsAfterTheirStep) {
  auto runner = std::make_unique<JobRunner>(store_.get(), 1);
  std::atomic<bool> started{false};
  runner->Register("long", {.handler = [&](JobContext& ctx) -> Result<Json> {
                              started = true;
                              while (!ctx.Cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
                              return Status::Cancelled("stopped");
                            }});
  ASSERT_TRUE(runner->Start().ok());
  auto job = runner->Submit("long", "default", {}, "t");
  while (!started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  runner->Stop();
  auto after = store_->GetJob(job->id);
  EXPECT_EQ(after->state, JobState::kCancelled);
  EXPECT_EQ(after->error, "interrupted by shutdown");
}

TEST_F(JobRunnerTest, WaitReturnsTheTerminalJobWithItsStructuredError) {
  JobRunner runner(store_.get(), 1);
  runner.Register("parse", {.handler = [](JobContext& ctx) -> Result<Json> {
                              std::this_thread::sleep_for(std::chrono::milliseconds(50));
                              if (ctx.payload().value("bad", false)) {
                                return Status::InvalidArgument("line 7: expected 3 fields")
                                    .WithDetail(ErrorDetail::Cell(7, "price", "expected 3 fields"));
                              }
                              return Json{{"rows", 10}};
                            }});
  ASSERT_TRUE(runner.Start().ok());
  auto good = runner.Submit("parse", "default", Json::object(), "t");
  auto bad = runner.Submit("parse", "default", {{"bad", true}}, "t");
  ASSERT_TRUE(good.ok() && bad.ok());
  auto g = runner.Wait(good->id, 10000);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->state, JobState::kSucceeded);
  EXPECT_EQ(g->result["rows"], 10);
  auto b = runner.Wait(bad->id, 10000);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->state, JobState::kFailed);
  Status st = StatusFromJson(b->result["error"]);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(st.details().size(), 1u);
  EXPECT_EQ(st.details()[0].line, 7);
  EXPECT_EQ(st.details()[0].column, "price");
  // A timeout returns the job as it is.
  auto slow = runner.Submit("parse", "default", Json::object(), "t");
  auto w = runner.Wait(slow->id, 1);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(IsTerminal(w->state));
  EXPECT_EQ(runner.Wait("job_missing", 10).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace lathe
