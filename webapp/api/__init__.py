"""The JSON API under ``/api/v1``: bearer tokens, JSON errors, the OpenAPI document.

Each resource lives in its own module (``lists.py``, ``contacts.py``, ``campaigns.py``…)
and registers its routes on :data:`bp`. Routes document themselves in their docstring
(YAML after ``---``), from which apispec builds ``/api/v1/openapi.json``: the document
cannot drift from the routes because it is generated from them.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_babel import gettext as _

from contacts.db import DomainError, db
from contacts.i18n import N_
from webapp.auth import audit, user_for_token
from webapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")

RESOURCE_MODULES = (
    "me",
    "lists",
    "contacts",
    "campaigns",
    "sending",
    "stats",
    "site",
    "benchmark",
)


class ApiError(DomainError):
    """An API refusal with its HTTP status."""


@bp.before_request
def authenticate() -> Any:
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _sep, raw = header.partition(" ")
    found = user_for_token(raw.strip()) if scheme.lower() == "bearer" and raw else None
    if found is None:
        return jsonify(
            {
                "error": {
                    "code": "unauthorized",
                    "message": _("Jeton d'API manquant, invalide ou révoqué."),
                }
            }
        ), 401
    g.api_user, g.api_token = found
    db.session.commit()  # last_used_at
    return None


def api_roles(*roles: str) -> Callable:
    """Refuse (403) callers whose role is not in ``roles``."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if g.api_user.role not in roles:
                audit("forbidden_role", f"{request.method} {request.path}")
                raise ApiError("forbidden", "Votre rôle ne permet pas cette action.", status=403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "Le corps de la requête doit être un objet JSON.")
    return body


NOT_FOUND = {
    "objet": N_("Objet introuvable."),
    "campagne": N_("Campagne introuvable."),
    "liste": N_("Liste introuvable."),
    "contact": N_("Contact introuvable."),
    "organisme": N_("Organisme introuvable."),
    "import": N_("Import introuvable."),
    "segment": N_("Segment introuvable."),
}


def not_found(what: str = "objet") -> ApiError:
    audit("not_found", f"{request.method} {request.path}")
    message = NOT_FOUND.get(what) or N_("%(what)s introuvable.", what=what.capitalize())
    return ApiError("not_found", message, status=404)


def org_id() -> int:
    if g.api_user.organisation_id is None:
        raise ApiError("forbidden", "Les analystes n'ont accès à aucun organisme.", status=403)
    return g.api_user.organisation_id


@bp.route("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API, generated from the routes."""
    return jsonify(build_spec(current_app))


def build_spec(app: Flask) -> dict[str, Any]:
    from apispec import APISpec
    from apispec_webframeworks.flask import FlaskPlugin

    spec = APISpec(
        title="Crieur API",
        version="1",
        openapi_version="3.0.3",
        plugins=[FlaskPlugin()],
        info={"description": "E-mail campaigns and consent-traced contacts for public bodies."},
        servers=[{"url": app.config["CRIEUR_PUBLIC_URL"] + "/api/v1"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    )
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
                continue
            view = app.view_functions[rule.endpoint]
            if "---" in (view.__doc__ or ""):
                try:
                    spec.path(view=view, app=app)
                except Exception as exc:  # a YAML slip in one docstring: name the route
                    raise RuntimeError(f"OpenAPI docstring of {rule.endpoint}: {exc}") from exc
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    # The spec's paths are relative to the server URL above.
    document["paths"] = {
        path.removeprefix("/api/v1"): item for path, item in document.get("paths", {}).items()
    }
    return document


def _import_resources() -> None:
    """Import every resource module once, before any app registers the blueprint."""
    for name in RESOURCE_MODULES:
        module = f"webapp.api.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def init_app(app: Flask) -> None:
    csrf.exempt(bp)  # bearer tokens, never cookies: nothing for a forged form to ride on
    app.register_blueprint(bp)


_import_resources()
