"""Prometheus metrics, one registry per app so that tests building many apps never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bastion_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "bastion_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "bastion_rate_limit_rejections", "requests refused by a rate limit", ["limit"], registry=self.registry
        )
        self.websockets = Gauge("bastion_websockets_open", "open WebSocket connections", registry=self.registry)
        self.events = Counter("bastion_events_published", "events published", ["event"], registry=self.registry)
        self.db_pool = Gauge("bastion_db_pool_connections", "database pool connections", ["state"], registry=self.registry)
        # labels() takes a lock and builds a key on every call; the children are kept here instead.
        self._request_children: dict[tuple[str, str, int], tuple] = {}
        self.backend_up = Gauge(
            "bastion_backend_up", "whether a backing service answered its last check", ["service"], registry=self.registry
        )

    def observe_request(self, method: str, route: str, status: int, latency_s: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(latency_s)
