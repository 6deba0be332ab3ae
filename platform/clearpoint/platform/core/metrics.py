"""The platform's metrics, defined once, in the Prometheus text format on their own HTTP port
(`serve --metrics-listen`). The workers of one `serve` write them to a shared directory
(prometheus-client's multiprocess mode) and the supervisor serves their sum, so one scrape sees the
whole platform whatever the number of workers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPCS = Counter("clearpoint_rpcs", "gRPC calls finished, by method and status code", ["method", "code"])
RPC_SECONDS = Histogram(
    "clearpoint_rpc_duration_seconds",
    "Time to serve a unary gRPC call, by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REDEMPTIONS = Counter(
    "clearpoint_redemptions",
    "Redemption attempts answered for the first time, by way (api: Redeem; scan: an agent's scan) and "
    "outcome (accepted, or the reason it was refused)",
    ["via", "outcome"],
)
SCANS = Counter(
    "clearpoint_scans",
    "Agents' scans answered for the first time, by outcome (accepted, refused, not_a_voucher, rejected)",
    ["outcome"],
)
SCAN_SECONDS = Histogram(
    "clearpoint_scan_answer_seconds",
    "Time from a scan's arrival at the platform to its answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
AGENT_STREAMS = Gauge("clearpoint_agent_streams", "Agent scan streams open", multiprocess_mode="livesum")
HEARTBEATS = Counter("clearpoint_agent_heartbeats", "Agent heartbeats received")
AGENT_BACKLOG = Gauge(
    "clearpoint_fleet_backlog_scans",
    "Scans agents hold unanswered, as their last heartbeats on this platform said",
    multiprocess_mode="livesum",
)
BATCH_ITEMS = Histogram(
    "clearpoint_batch_items",
    "Items written together in one batch (group commit), by batcher",
    ["batcher"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
DATABASE_UP = Gauge(
    "clearpoint_database_up", "1 while the database answers this process, else 0", multiprocess_mode="livemin"
)
