"""Fixtures: ``app`` on SQLite and PostgreSQL, ``client``, ``runner``, ``login_as``, ``api``,
the Dramatiq stub broker and worker, and real service processes (see ``tests/services``).

Integration and browser tests get the ``app`` fixture once per database backend
(``test_x[sqlite]``, ``test_x[postgres]``); set ``CRIEUR_TEST_BACKENDS=sqlite`` to run one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

os.environ.setdefault("CRIEUR_BROKER_URL", "")  # the stub broker, whatever the shell says

from tests import services  # noqa: E402
from tests.services import need  # noqa: E402
from tests.smtp_servers import recording_smtp, smtp_sink  # noqa: E402, F401  (shared fixtures)

BACKENDS = [b for b in os.environ.get("CRIEUR_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        path = str(metafunc.definition.path)
        marker = metafunc.definition.get_closest_marker("backends")
        if marker:
            backends = [b for b in marker.args if b in BACKENDS]
        elif f"{os.sep}browser{os.sep}" in path:
            backends = BACKENDS[:1]
        else:
            backends = BACKENDS
        metafunc.parametrize("backend", backends, scope="function")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run only on these database backends")
    from webapp.auth import use_fast_hashing_for_tests

    use_fast_hashing_for_tests()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[services.PostgresServer | None]:
    server = services.start_postgres()
    yield server
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[services.RedisServer | None]:
    server = services.start_redis()
    yield server
    if server is not None:
        server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    need("redis", redis_server is not None, "redis-server not installed")
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


_pg_schema_ready = False


def _database_url(backend: str, tmp_path: Path, pg_server) -> str:
    global _pg_schema_ready
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    need("postgres", pg_server is not None, "PostgreSQL binaries not found")
    return pg_server.url


def _reset_postgres(db) -> None:
    from sqlalchemy import text

    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def backend() -> str:  # overridden by parametrisation for integration tests
    return BACKENDS[0]


@pytest.fixture
def app_config(tmp_path: Path) -> dict:
    """Extra configuration for the ``app`` fixture; override in a test module to change it."""
    return {}


class FreshRequestClient(FlaskClient):
    """A test client whose requests see what a real request would: an empty ``g`` and
    fresh rows, even though the ``app`` fixture keeps one app context open for the test
    (Flask reuses that context for requests, so ``g`` and the session would leak).
    """

    def open(self, *args, **kwargs):
        from flask import g

        from contacts.db import db

        for name in list(g):
            g.pop(name)
        db.session.expire_all()
        return super().open(*args, **kwargs)


@pytest.fixture
def app(backend: str, tmp_path: Path, pg_server, app_config: dict):
    from contacts.db import db
    from webapp import create_app

    config = {
        "TESTING": True,
        "CRIEUR_DATABASE_URL": _database_url(backend, tmp_path, pg_server),
        "CRIEUR_SECRET_KEY": "test-secret-key-not-for-production",
        "CRIEUR_PUBLIC_URL": "https://crieur.test",
        "CRIEUR_SMTP_URL": "",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": None,
        "CRIEUR_BACKEND": backend,
    }
    config.update(app_config)
    app = create_app(config, instance_path=str(tmp_path / "instance"))
    app.test_client_class = FreshRequestClient
    with app.app_context():
        if backend == "postgres":
            db.create_all()
            _reset_postgres(db)
        else:
            db.create_all()
        yield app
        db.session.remove()
        if backend == "postgres":
            _reset_postgres(db)
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def org(app):
    from tests.factories import make_org

    return make_org()


@pytest.fixture
def login_as(app, client, org):
    """``login_as("officer")`` signs a new user of ``org`` in on ``client`` and returns it."""
    from contacts.db import db
    from tests.factories import PASSWORD, make_user

    def _login(role: str = "officer", organisation=None, test_client=None):
        user = make_user(organisation or (None if role == "analyst" else org), role=role)
        db.session.commit()
        c = test_client or client
        response = c.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return user

    return _login


class ApiClient:
    """The test client with a bearer token on every request."""

    def __init__(self, client, token: str, user) -> None:
        self.client, self.token, self.user = client, token, user

    def _headers(self, kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers

    def get(self, url, **kw):
        return self.client.get("/api/v1" + url, headers=self._headers(kw), **kw)

    def post(self, url, **kw):
        return self.client.post("/api/v1" + url, headers=self._headers(kw), **kw)

    def put(self, url, **kw):
        return self.client.put("/api/v1" + url, headers=self._headers(kw), **kw)

    def delete(self, url, **kw):
        return self.client.delete("/api/v1" + url, headers=self._headers(kw), **kw)


@pytest.fixture
def api(app, client, org):
    """``api("officer")`` gives an :class:`ApiClient` for a new user of ``org``."""
    from contacts.db import db
    from tests.factories import make_user
    from webapp.auth import create_token

    def _api(role: str = "officer", organisation=None):
        user = make_user(organisation or (None if role == "analyst" else org), role=role)
        token = create_token(user)
        db.session.commit()
        return ApiClient(client, token, user)

    return _api


@pytest.fixture
def stub_broker(app):
    from contacts.broker import broker
    from tests.stub_queues import release_held_messages

    broker.flush_all()
    yield broker
    # Messages a stopped worker held (delayed retries) would make every later join() hang.
    release_held_messages(broker)


@pytest.fixture
def stub_worker(stub_broker):
    import dramatiq

    worker = dramatiq.Worker(stub_broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()
