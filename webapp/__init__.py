"""The web application: the composition root and the only package that knows HTTP."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask

ACTOR_MODULES = ("contacts.actors", "campaigns.actors", "analytics.actors")
MODEL_MODULES = (
    "contacts.models",
    "campaigns.models",
    "analytics.models",
    "analytics.benchmark.models",
    "webapp.models",
)


def create_app(config: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the app from the environment (``CRIEUR_*``), then ``config`` on top (tests)."""
    instance_path = instance_path or os.environ.get("CRIEUR_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from webapp.config import from_env

    app.config.update(from_env(Path(app.instance_path)))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="crieur_session",
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=60 * 1024 * 1024,
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_DEFAULT_TIMEZONE="Europe/Paris",
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        RATELIMIT_HEADERS_ENABLED=False,
    )
    if config:
        app.config.update(config)
        if "CRIEUR_DATABASE_URL" in config:
            app.config["SQLALCHEMY_DATABASE_URI"] = config["CRIEUR_DATABASE_URL"]
        if "CRIEUR_SECRET_KEY" in config:
            app.config["SECRET_KEY"] = config["CRIEUR_SECRET_KEY"]

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    _init_sentry(app)
    _init_extensions(app)
    for name in ACTOR_MODULES:
        importlib.import_module(name)
    from webapp import worker

    worker.init_app(app)
    _register_blueprints(app)
    from webapp import errors, security, templating

    errors.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    from webapp import cli

    cli.register(app)
    proxies = int(app.config.get("CRIEUR_PROXIES") or 0)
    if proxies:
        # Behind nginx/Apache the client address (used for rate limits and the daily
        # visitor hash, never stored) and the scheme come from the proxy's headers.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app


def _init_sentry(app: Flask) -> None:
    if not app.config.get("SENTRY_DSN"):
        return
    import sentry_sdk
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    from webapp.sentry import scrub_event

    sentry_sdk.init(
        dsn=app.config["SENTRY_DSN"],
        integrations=[FlaskIntegration(), DramatiqIntegration()],
        send_default_pii=False,
        before_send=scrub_event,
        traces_sample_rate=0.0,
    )


def _init_extensions(app: Flask) -> None:
    from contacts.db import db
    from webapp import i18n
    from webapp.extensions import csrf, limiter, login_manager, migrate

    # Every models module, so that metadata (and Alembic) see every table.
    for name in MODEL_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)

    db.init_app(app)
    migrations = Path(__file__).resolve().parents[1] / "migrations"
    migrate.init_app(app, db, directory=str(migrations))
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    from webapp import auth

    login_manager.init_app(app)
    auth.init_login(app)


def _register_blueprints(app: Flask) -> None:
    from webapp.api import init_app as init_api
    from webapp.views import BLUEPRINT_MODULES

    for name in BLUEPRINT_MODULES:
        module = importlib.import_module(f"webapp.views.{name}")
        app.register_blueprint(module.bp)
    init_api(app)
