"""Contacts pages: lists, contacts and their consent timeline, the import wizard, the
suppression list, segments, GDPR export and erasure.

Thin views over ``contacts`` services: parse, call, commit, render. Every id in a URL is
looked up within the signed-in user's body; another body's id is a 404 and an audit line.

One blueprint, ``contacts`` at ``/contacts``; its routes live in one module per page
family (as microblog's ``main/routes.py``), imported at the end of this module:
``list_pages``, ``people_pages``, ``import_pages``, ``suppression_pages``,
``segment_pages``. What they share (roles, paging, 404s, downloads, label tables for the
templates) is here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from contacts import consent_history, lists, suppression
from contacts.import_report import KIND_LABELS
from contacts.models import RISKY_SOURCES
from webapp.auth import audit

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

READ = ("officer", "director", "admin")
WRITE = ("officer", "admin")
PAGE = 50


def secret() -> str:
    return current_app.config["CRIEUR_SECRET_KEY"]


def or_404(obj: Any) -> Any:
    """``obj``, or a 404 (and an audit line) when the lookup in the user's body found nothing."""
    if obj is None:
        audit("not_found", f"{request.method} {request.path}")
        abort(404)
    return obj


def page_number() -> int:
    return max(request.args.get("page", 1, type=int) or 1, 1)


def download(data: bytes, filename: str, mimetype: str) -> Response:
    return Response(
        data,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.context_processor
def labels() -> dict[str, Any]:
    return {
        "source_labels": consent_history.SOURCE_LABELS,
        "basis_labels": consent_history.LEGAL_BASIS_LABELS,
        "action_labels": consent_history.ACTION_LABELS,
        "purpose_labels": lists.PURPOSE_LABELS,
        "risky_sources": RISKY_SOURCES,
        "reason_labels": suppression.REASON_LABELS,
        "kind_labels": KIND_LABELS,
    }


# The routes register themselves on ``bp`` when imported (they need ``bp`` defined above).
from webapp.views.contacts import (  # noqa: E402
    import_pages,
    list_pages,
    people_pages,
    segment_pages,
    suppression_pages,
)

__all__ = [
    "bp",
    "import_pages",
    "list_pages",
    "people_pages",
    "segment_pages",
    "suppression_pages",
]
