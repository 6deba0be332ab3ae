"""Metrics over HTTP for Prometheus (GET /metrics), on a port of their own: a scrape never queues
behind gRPC calls, and the port can be kept off the network the API is on."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from clearpoint.addresses import Address
from clearpoint.platform.api.listening import ListenError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(address: Address, multiprocess_dir: str | None = None) -> None:
    """Serve /metrics on `address` from a thread: this process's metrics, or with
    `multiprocess_dir` the sum of the workers writing there."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = None
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    try:
        if registry is None:
            start_http_server(address.port, addr=address.host)
        else:
            start_http_server(address.port, addr=address.host, registry=registry)
    except OSError as exc:
        raise ListenError(
            f"cannot serve metrics on {address} ({exc.strerror}): choose another --metrics-listen"
        ) from None


@contextmanager
def shared_directory() -> Iterator[str]:
    """A fresh directory the workers write their metrics to (set in their environment before they
    start, as prometheus-client's multiprocess mode needs), removed when the serve ends."""
    path = tempfile.mkdtemp(prefix="clearpoint-metrics-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def worker_gone(multiprocess_dir: str, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sum, as counters must)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, multiprocess_dir)  # type: ignore[no-untyped-call]
