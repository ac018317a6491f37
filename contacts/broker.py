"""The Dramatiq broker, chosen from ``CRIEUR_BROKER_URL``.

This is the one module that reads configuration at import time: Dramatiq binds actors to
a broker when they are declared (``@dramatiq.actor(broker=broker)``). An empty URL gives
a :class:`StubBroker`, served by the in-process worker of ``crieur run`` and by the
tests; ``redis://`` gives a RedisBroker and ``amqp://`` a RabbitmqBroker.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)


def _middleware() -> list:
    # Prometheus is left out: it opens a port per worker process, which nobody asked for.
    return [
        AgeLimit(),
        TimeLimit(time_limit=15 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=1000, max_backoff=5 * 60 * 1000),
    ]


def make_broker(url: str) -> dramatiq.Broker:
    """A broker for ``url``; raises ValueError with a clear message on an unknown scheme."""
    if not url:
        return StubBroker(middleware=_middleware())
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=_middleware())
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=_middleware())
    raise ValueError(f"CRIEUR_BROKER_URL: unsupported scheme in {url!r} (redis:// or amqp://)")


broker_url = os.environ.get("CRIEUR_BROKER_URL", "").strip()
broker = make_broker(broker_url)
dramatiq.set_broker(broker)


def is_embedded() -> bool:
    """True when messages stay in this process (no Redis or RabbitMQ)."""
    return isinstance(broker, StubBroker)
