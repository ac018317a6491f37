"""Flask extensions, created unbound and initialised in :func:`webapp.create_app`."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect


def _client_key() -> str:
    # Kept in the limiter's memory only, never written to the database.
    return request.remote_addr or "unknown"


login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
migrate = Migrate(render_as_batch=True, compare_type=True)
limiter = Limiter(key_func=_client_key, default_limits=[], storage_uri="memory://")
