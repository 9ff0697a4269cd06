"""Prometheus metrics of the API. Request and relayer metrics live in the process-wide registry
(created once, whatever number of apps a test builds); execution counts are read from the store
at scrape time by a collector in each app's own registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from autometa.store import EXECUTION_STATUSES


def _get_or_create(kind: type[Any], name: str, doc: str, labels: list[str], **kwargs: Any) -> Any:
    existing = REGISTRY._names_to_collectors.get(name)  # noqa: SLF001 - no public lookup exists
    if existing is not None:
        return existing
    return kind(name, doc, labels, registry=REGISTRY, **kwargs)


HTTP_LATENCY = _get_or_create(
    Histogram,
    "autometa_api_request_seconds",
    "API request latency by route",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
RELAYER_TXS = _get_or_create(
    Counter, "autometa_relayer_transactions", "Relayer transactions by kind and outcome", ["kind", "outcome"]
)
RELAYER_LATENCY = _get_or_create(
    Histogram,
    "autometa_relayer_submit_seconds",
    "Relayer submit-to-receipt time",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)


class ExecutionCollector(Collector):
    """`autometa_executions{status=...}` and trigger-to-inclusion latency from the store."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._store is None:
            return
        try:
            stats = self._store.executions.stats()
        except Exception:  # a scrape must not fail because the database hiccuped
            return
        counts = GaugeMetricFamily("autometa_executions", "Executions recorded, by status", labels=["status"])
        for status in EXECUTION_STATUSES:
            counts.add_metric([status], float(stats.counts.get(status, 0)))
        yield counts
        latency = GaugeMetricFamily(
            "autometa_execution_latency_seconds", "Trigger-to-inclusion latency", labels=["quantile"]
        )
        for label, value in (("0.5", stats.p50_latency_s), ("0.95", stats.p95_latency_s)):
            if value is not None:
                latency.add_metric([label], value)
        yield latency


def app_registry(store: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExecutionCollector(store))
    return registry


def render(own: CollectorRegistry) -> bytes:
    return generate_latest(REGISTRY) + generate_latest(own)
