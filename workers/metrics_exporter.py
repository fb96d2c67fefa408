"""The worker's own Prometheus endpoint, for worker hosts that share no metrics directory with
an API process (see service/metrics.py).

Off unless `ALERTS_WORKER_METRICS_PORT` is set. Celery's pool processes each record their
evaluations in `PROMETHEUS_MULTIPROC_DIR`; the worker's main process serves the sum of them
on `ALERTS_WORKER_METRICS_HOST:PORT/metrics` (127.0.0.1 by default). The page has no
authentication, and holds no patient data: counts and timings only. Bind it to an address
only the scraper reaches.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from service.config import Settings
from service.metrics import multiprocess_dir

log = logging.getLogger(__name__)


def start_exporter(settings: Settings) -> bool:
    """Starts the endpoint in this (the worker's main) process; False when not configured."""
    port = settings.worker_metrics_port
    if not port:
        return False
    if not multiprocess_dir():
        log.warning(
            "ALERTS_WORKER_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: the pool "
            "processes' metrics cannot be collected, so no metrics endpoint is started"
        )
        return False
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=settings.worker_metrics_host, registry=registry)
    log.info("worker metrics on http://%s:%d/metrics", settings.worker_metrics_host, port)
    return True
