"""The metadata schema, as SQLAlchemy Core tables. Migrations in ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("description", Text, nullable=False, default=""),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(200), ForeignKey("models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("flavor", String(40), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("artifact_filename", String(500), nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("profile_json", Text, nullable=False),
    Column("metrics_json", Text, nullable=False),
    Column("checks_json", Text, nullable=False),
    Column("lineage_json", Text, nullable=False),
    Column("tags_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("model_name", "version", name="uq_model_version"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_name", String(200), ForeignKey("models.name"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("at", Float, nullable=False),
    Column("by", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_alias_history_model_alias", "model_name", "alias"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(300), nullable=False),
    Column("details_json", Text, nullable=False),
    Index("ix_audit_log_at", "at"),
)

# The prediction log is stored as segments: one row per appended batch holding its rows as an
# Arrow IPC blob (ids, times, inputs and outputs, columnar), plus one small index row per
# prediction id for feedback look-ups. See store/_predictions.py for why.
prediction_segments = Table(
    "prediction_segments",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", String(20), nullable=False),
    Column("batch_id", String(64), nullable=True),
    Column("ts_min", Float, nullable=False),
    Column("ts_max", Float, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("ix_prediction_segments_model_ts", "model", "ts_max"),
    Index("ix_prediction_segments_ts", "ts_max"),
)

prediction_ids = Table(
    "prediction_ids",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("segment", Integer, nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(32), nullable=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("label", Text, nullable=True),
    Column("source", String(200), nullable=False),
    # Set when a later label replaced this one (``replace``): kept as history, read by none.
    Column("replaced_at", Float, nullable=True),
    Index("ix_feedback_prediction_id", "prediction_id"),
    Index("ix_feedback_ts", "ts"),
)

scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("input_path", Text, nullable=False),
    Column("output_path", Text, nullable=False),
    Column("rejects_path", Text, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("n_rows", Integer, nullable=False, default=0),
    Column("n_scored", Integer, nullable=False, default=0),
    Column("n_rejected", Integer, nullable=False, default=0),
    Column("status", String(20), nullable=False),
)

# ---- deployments and rollouts (migration 0002) ------------------------------------------------
# One row per deployment: the version it serves, the last good one (rollback's target), and the
# active rollout. ``revision`` increases with every change; conditional updates on it make two
# admins racing get a clean conflict instead of a corrupted state.
deployment_states = Table(
    "deployment_states",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_good_version", Integer, nullable=True),
    Column("active_rollout", Integer, nullable=True),
    Column("revision", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(200), nullable=False),
    Column("strategy", String(20), nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("primary_version", Integer, nullable=True),
    Column("status", String(20), nullable=False),
    Column("step", Integer, nullable=False, default=0),
    Column("step_started_at", Float, nullable=False),
    Column("paused", Integer, nullable=False, default=0),
    Column("config_json", Text, nullable=False),
    Column("history_json", Text, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_rollouts_deployment", "deployment"),
)

# Worker processes of one server report here; the rolling strategy moves them one at a time,
# and the rollout controller runs in the one that holds the lease.
server_workers = Table(
    "server_workers",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("deployment", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("target_version", Integer, nullable=True),
    Column("healthy", Integer, nullable=False, default=1),
    Column("heartbeat_at", Float, nullable=False),
)

# A lease names the replica that leads a job (store/_leases.py); ``epoch`` grows each time it
# changes hands and fences the leader's writes (migration 0007).
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("epoch", Integer, nullable=False, server_default="0"),
)

# ---- monitoring time series (migration 0003) ----------------------------------------------------
# One row per metric point the monitor records every few seconds: the dashboard's charts and
# the alert rules read these. ``labels`` is a canonical "k=v,k=v" string (bounded values only).
metric_points = Table(
    "metric_points",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("name", String(100), nullable=False),
    Column("deployment", String(200), nullable=False),
    Column("labels", String(300), nullable=False, default=""),
    Column("value", Float, nullable=True),
    Index("ix_metric_points_name_ts", "name", "deployment", "ts"),
    Index("ix_metric_points_ts", "ts"),
)

# Migration 0010: each series folded into finished spans of ``span`` seconds (10 minutes, and
# hours folded from those): count and sum of the known values, the newest point's time. A chart
# of 30 days reads 720 rows a series, not 260,000 (``monitoring/_rollups.py``).
metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("span", Float, nullable=False),
    Column("start", Float, nullable=False),
    Column("name", String(100), nullable=False),
    Column("deployment", String(200), nullable=False),
    Column("labels", String(300), nullable=False, default=""),
    Column("n", Integer, nullable=False),
    Column("total", Float, nullable=True),
    Column("last_ts", Float, nullable=False),
    UniqueConstraint(
        "name", "deployment", "labels", "span", "start", name="uq_metric_rollups_series"
    ),
    Index("ix_metric_rollups_name_span_start", "name", "deployment", "span", "start"),
    Index("ix_metric_rollups_span_start", "span", "start"),
)

# ---- degrees of automation, the review queue, retraining runs -----------------------------------
automation_states = Table(
    "automation_states",
    metadata,
    Column("deployment", String(200), primary_key=True),
    Column("degree", String(20), nullable=False),
    Column("proposal", String(20), nullable=True),
    Column("proposal_reason", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("deployment", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=True),
    Column("prediction_id", String(32), nullable=False),
    Column("degree", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("inputs_json", Text, nullable=False),
    Column("suggestion_json", Text, nullable=True),
    Column("confidence", Float, nullable=True),
    Column("decided_at", Float, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("decision_json", Text, nullable=True),
    Column("agreed", Integer, nullable=True),
    Index("ix_reviews_status_created", "status", "created_at"),
    Index("ix_reviews_deployment", "deployment", "status"),
)

retrain_runs = Table(
    "retrain_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("trigger", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("version", Integer, nullable=True),
    Column("details_json", Text, nullable=False, default="{}"),
    Column("started_by", String(200), nullable=False),
    Index("ix_retrain_runs_model", "model", "started_at"),
)

# ---- alerts (migration 0004) --------------------------------------------------------------------
# One row per alert: a rule's condition on one series (deployment + label set), from pending to
# firing to resolved. Open (pending or firing) rows are reloaded when the server starts, so an
# alert keeps its state across a restart. ``details_json`` holds the rule's comparison, the
# annotations, the actions' outcomes and the hysteresis timer.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(200), nullable=False),
    Column("deployment", String(200), nullable=False),
    Column("labels", String(300), nullable=False, default=""),
    Column("state", String(20), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("fired_at", Float, nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("details_json", Text, nullable=False),
    # Migration 0006: who acknowledged the alert ("someone is on it"), and when.
    Column("acknowledged_at", Float, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
    Index("ix_alerts_state", "state"),
    Index("ix_alerts_updated_at", "updated_at"),
)

# ---- fleet-wide traffic (migration 0007) --------------------------------------------------------
# One row per replica per monitoring interval: what the replica counted in that interval
# (requests by deployment, version and outcome; latency sketch; input checks), as JSON. The
# monitor's leader sums the rows it has not summed yet (``consumed_at``), so its series count
# every replica's traffic once; summed rows are pruned after an hour.
traffic_intervals = Table(
    "traffic_intervals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("replica", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=False),
    Column("consumed_at", Float, nullable=True),
    Column("payload", Text, nullable=False),
    Index("ix_traffic_intervals_consumed", "consumed_at"),
    Index("ix_traffic_intervals_ended", "ended_at"),
)

# ---- edge devices (migration 0008) -------------------------------------------------------------
# A fleet of devices running exported bundles (modelpilot/edge/, docs/edge.md). One row per edge
# rollout: the share of devices (stable by device id) that run the candidate while the gates
# judge the synced logs; the newest finished row says which version the fleet runs. One row per
# device: what it was last assigned, when it last synced, and what it uploaded and dropped.
edge_rollouts = Table(
    "edge_rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("primary_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("share", Float, nullable=False),
    Column("state", String(20), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("started_by", String(200), nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("failures", Integer, nullable=False, default=0),
    Column("analyzed_at", Float, nullable=True),
    Column("gates_json", Text, nullable=False, default="[]"),
    Index("ix_edge_rollouts_deployment", "deployment", "id"),
)

edge_devices = Table(
    "edge_devices",
    metadata,
    Column("deployment", String(200), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("assigned_version", Integer, nullable=True),
    Column("last_sync", Float, nullable=True),
    Column("uploaded", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("dropped", Integer, nullable=False, default=0),
)

# ---- alert silences (migration 0009) ------------------------------------------------------------
# A silence mutes the notifications of one alert's series (rule, deployment, label set) until
# ``ends_at``: the alert keeps firing, resolving and acting; nobody is told. Kept after they end,
# so the deployment's history shows who silenced what.
alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(200), nullable=False),
    Column("deployment", String(200), nullable=False),
    Column("labels", String(300), nullable=False, default=""),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_alert_silences_ends_at", "ends_at"),
)
