#include "store/migrations.h"

namespace lathe {

const std::vector<const char*>& SqliteMigrations() {
  static const std::vector<const char*> kMigrations = {
      // 1: the foundation
      R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  is_admin INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_expires ON tokens(expires_at);
CREATE TABLE projects (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE datasets (
  project TEXT NOT NULL REFERENCES projects(name),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project, name)
);
CREATE TABLE dataset_versions (
  project TEXT NOT NULL,
  dataset TEXT NOT NULL,
  version INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  columns TEXT NOT NULL,
  stats TEXT NOT NULL,
  blob TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project, dataset, version),
  FOREIGN KEY (project, dataset) REFERENCES datasets(project, name)
);
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  project TEXT NOT NULL,
  state TEXT NOT NULL,
  progress REAL NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL,
  result TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs(state, created_at);
CREATE INDEX jobs_project ON jobs(project, created_at);
CREATE TABLE job_logs (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  project TEXT NOT NULL REFERENCES projects(name),
  dataset TEXT NOT NULL,
  dataset_version INTEGER NOT NULL,
  target TEXT NOT NULL,
  task TEXT NOT NULL,
  learner TEXT NOT NULL,
  params TEXT NOT NULL,
  split TEXT NOT NULL,
  state TEXT NOT NULL,
  metrics TEXT NOT NULL DEFAULT '{}',
  signature TEXT NOT NULL DEFAULT '{}',
  pipeline TEXT NOT NULL DEFAULT '{}',
  model_blob TEXT NOT NULL DEFAULT '',
  job_id TEXT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  train_rows INTEGER NOT NULL DEFAULT 0,
  test_rows INTEGER NOT NULL DEFAULT 0,
  train_seconds REAL NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_project ON runs(project, created_at);
CREATE TABLE models (
  project TEXT NOT NULL REFERENCES projects(name),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project, name)
);
CREATE TABLE model_versions (
  project TEXT NOT NULL,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  run_id TEXT NOT NULL REFERENCES runs(id),
  blob TEXT NOT NULL,
  signature TEXT NOT NULL,
  metrics TEXT NOT NULL,
  task TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project, model, version),
  FOREIGN KEY (project, model) REFERENCES models(project, name)
);
CREATE TABLE deployments (
  project TEXT NOT NULL REFERENCES projects(name),
  name TEXT NOT NULL,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project, name),
  FOREIGN KEY (project, model, version) REFERENCES model_versions(project, model, version)
);
)sql",
      // 2: data layer — lineage, profile, quarantine and quality per version; versioned documents
      // (recipes, connections, dataset settings); labels
      R"sql(
ALTER TABLE dataset_versions ADD COLUMN lineage TEXT NOT NULL DEFAULT '{}';
ALTER TABLE dataset_versions ADD COLUMN profile_blob TEXT NOT NULL DEFAULT '';
ALTER TABLE dataset_versions ADD COLUMN quarantine_blob TEXT NOT NULL DEFAULT '';
ALTER TABLE dataset_versions ADD COLUMN bad_rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dataset_versions ADD COLUMN quality TEXT NOT NULL DEFAULT '{}';
CREATE TABLE documents (
  project TEXT NOT NULL REFERENCES projects(name),
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_by TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project, kind, name, version)
);
CREATE TABLE labels (
  project TEXT NOT NULL REFERENCES projects(name),
  queue TEXT NOT NULL,
  row_index INTEGER NOT NULL,
  labeler TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project, queue, row_index, labeler)
);
)sql",
      // 3: training evaluation — per-round learning curves of a run
      R"sql(
ALTER TABLE runs ADD COLUMN curves TEXT NOT NULL DEFAULT '{}';
)sql",
      // 4: tenancy — project members with a role each
      R"sql(
CREATE TABLE members (
  project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project, user_id)
);
CREATE INDEX members_user ON members(user_id);
)sql",
      // 5: serving — deployment configuration (routes, shadow, policies), events, the prediction log
      R"sql(
ALTER TABLE deployments ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
CREATE TABLE deployment_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project TEXT NOT NULL,
  deployment TEXT NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX deployment_events_by_deployment ON deployment_events(project, deployment, id);
CREATE TABLE predictions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project TEXT NOT NULL,
  deployment TEXT NOT NULL,
  request_id TEXT NOT NULL,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  shadow INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  latency_ms REAL NOT NULL,
  inputs TEXT NOT NULL,
  outputs TEXT NOT NULL,
  labels TEXT,
  labeled_at INTEGER
);
CREATE INDEX predictions_by_request ON predictions(project, deployment, request_id);
CREATE INDEX predictions_by_time ON predictions(project, deployment, created_at);
)sql",
      // 6: explanations — global importance of a run's model
      R"sql(
ALTER TABLE runs ADD COLUMN explanations TEXT NOT NULL DEFAULT '{}';
)sql",
      // 7: searches (tuning, AutoML) and their trials; experiment tracking
      R"sql(
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'train';
ALTER TABLE runs ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN search TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN experiment TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lathe_version TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_parent ON runs(project, parent);
)sql",
      // 8: model registry stages and model cards
      R"sql(
ALTER TABLE model_versions ADD COLUMN stage TEXT NOT NULL DEFAULT 'none';
ALTER TABLE model_versions ADD COLUMN stage_changed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE model_versions ADD COLUMN card TEXT NOT NULL DEFAULT '{}';
)sql",
      // 9: API keys (per project, a subset of permissions, stored as the SHA-256 of the key)
      R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  project TEXT NOT NULL,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  permissions TEXT NOT NULL,
  deployment TEXT NOT NULL DEFAULT '',
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_project ON api_keys(project, created_at);
)sql",
      // 10: the audit log, hash-chained (auth/audit_log.h)
      R"sql(
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  key_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  action TEXT NOT NULL,
  project TEXT NOT NULL,
  target TEXT NOT NULL,
  request_id TEXT NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit_log(at_ms);
CREATE INDEX audit_by_project ON audit_log(project, seq);
)sql",
      // 11: usage metering per project, API key, day and metric
      R"sql(
CREATE TABLE usage (
  project TEXT NOT NULL,
  key_id TEXT NOT NULL,
  day TEXT NOT NULL,
  metric TEXT NOT NULL,
  quantity REAL NOT NULL,
  PRIMARY KEY (project, day, key_id, metric)
);
)sql",
  };
  return kMigrations;
}

}  // namespace lathe
