"""The agent's metrics, in the Prometheus text format on their own port (`metrics_listen` in the
configuration): what a store's monitoring scrapes to see scans, answers, backlog and the link."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from clearpoint.addresses import Address
from prometheus_client import Counter, Gauge, Histogram, start_http_server

SCANS = Counter("clearpoint_agent_scans", "Scans journaled, by scanner", ["scanner"])
NOT_RECORDED = Counter("clearpoint_agent_scans_not_recorded", "Scans refused before the journal, by why", ["why"])
ANSWERS = Counter(
    "clearpoint_agent_answers",
    "First answers from the platform, by outcome (accepted, refused, not_a_voucher, rejected)",
    ["outcome"],
)
ANSWER_SECONDS = Histogram(
    "clearpoint_agent_answer_seconds",
    "Time from a scan's arrival to its answer in the journal (an outage's backlog shows here)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
BACKLOG = Gauge("clearpoint_agent_backlog_scans", "Scans journaled and not yet answered")
LINK_UP = Gauge("clearpoint_agent_link_up", "1 while the stream to the platform is up, else 0")
SCANNER_CONNECTED = Gauge("clearpoint_agent_scanner_connected", "1 while the scanner is open, else 0", ["scanner"])
ROUND_TRIP = Gauge("clearpoint_agent_round_trip_seconds", "The last heartbeat's round trip to the platform")


def watch(
    backlog: Callable[[], int],
    link_up: Callable[[], bool],
    round_trip_us: Callable[[], int | None],
    scanners: Iterable[tuple[str, Callable[[], bool]]],
) -> None:
    """Gauges read when scraped, from the agent's own state (never stale, nothing to update)."""
    BACKLOG.set_function(backlog)
    LINK_UP.set_function(_as_number(link_up))
    ROUND_TRIP.set_function(lambda: (round_trip_us() or 0) / 1e6)
    for scanner_id, connected in scanners:
        SCANNER_CONNECTED.labels(scanner_id).set_function(_as_number(connected))


def _as_number(flag: Callable[[], bool]) -> Callable[[], float]:
    return lambda: 1.0 if flag() else 0.0


def serve(address: Address) -> None:
    start_http_server(address.port, addr=address.host)
