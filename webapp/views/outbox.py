"""The embedded outbox: messages captured instead of sent, for the body's admins."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from campaigns.models import OutboxMessage
from contacts.db import db
from webapp.auth import roles_required

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

PREVIEW_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def _get(message_id: int) -> OutboxMessage:
    msg = db.session.get(OutboxMessage, message_id)
    if msg is None or msg.organisation_id != current_user.organisation_id:
        abort(404)
    return msg


def _parts(raw: bytes) -> dict[str, str]:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    found = {"html": "", "text": "", "attachments": []}
    for part in parsed.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if part.get_filename():
            found["attachments"].append(part.get_filename())
        elif ctype == "text/html" and not found["html"]:
            found["html"] = part.get_content()
        elif ctype == "text/plain" and not found["text"]:
            found["text"] = part.get_content()
    found["headers"] = list(parsed.items())
    return found


@bp.route("/")
@roles_required("admin")
def index():
    page = max(request.args.get("page", 1, type=int), 1)
    messages = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.organisation_id == current_user.organisation_id)
        .order_by(OutboxMessage.id.desc())
        .limit(50)
        .offset((page - 1) * 50)
    ).all()
    return render_template("outbox/index.html", messages=messages, page=page)


@bp.route("/<int:message_id>")
@roles_required("admin")
def show(message_id: int):
    msg = _get(message_id)
    return render_template(
        "outbox/show.html", msg=msg, parts=_parts(msg.raw), raw=msg.raw.decode("utf-8", "replace")
    )


@bp.route("/<int:message_id>/html")
@roles_required("admin")
def html(message_id: int):
    """The HTML part alone, framed by the show page under a CSP that runs no script."""
    msg = _get(message_id)
    response = render_template("outbox/raw_html.html", html=_parts(msg.raw)["html"])
    return response, 200, {"Content-Security-Policy": PREVIEW_CSP}
