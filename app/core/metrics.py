"""Prometheus metrics: requests by route and status, latency, in-flight, database pool.

Each app has its own registry (tests build many apps). With several worker processes
(`cdp serve --workers N`) PROMETHEUS_MULTIPROC_DIR is set and /metrics aggregates the
request metrics of all workers; pool gauges are those of the worker that answered.
"""

import os
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import Database

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "cdp_http_requests",
            "HTTP requests handled, by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cdp_http_request_duration_seconds",
            "Time from request to the end of the response, by route template and method.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Audit: who reads personal data, and how much (a profile, an export, a lookup).
        self.personal_data_reads = Counter(
            "cdp_personal_data_reads",
            "Reads of a customer's personal data, by API key and operation.",
            ["key_id", "operation"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "cdp_http_requests_in_flight",
            "Requests being handled now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def track_database_pool(self, database: Database) -> None:
        self.registry.register(_PoolCollector(database))

    def exposition(self) -> tuple[bytes, str]:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            aggregate = CollectorRegistry()
            multiprocess.MultiProcessCollector(aggregate)  # type: ignore[no-untyped-call]
            return generate_latest(aggregate), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _PoolCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.database.engine.pool
        if not isinstance(pool, QueuePool):
            return
        figures = {
            "size": ("Configured pool size.", pool.size()),
            "checked_out": ("Connections in use.", pool.checkedout()),
            "checked_in": ("Idle connections in the pool.", pool.checkedin()),
            "overflow": ("Connections opened beyond the pool size.", pool.overflow()),
        }
        for name, (doc, value) in figures.items():
            yield GaugeMetricFamily(f"cdp_db_pool_{name}", doc, value=value)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_tracking_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_tracking_status)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            # The template, not the path: one series per endpoint, not per customer id.
            template = route.path if isinstance(route, Route) else "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status_code)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
