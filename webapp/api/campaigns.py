"""``/campaigns``: compose, preview, test, submit and approve (sending is in ``sending.py``).

Thin handlers: parse, call one service of :mod:`campaigns.editing`, :mod:`campaigns.workflow`
or :mod:`campaigns.preview`, commit, answer. Another body's campaign is a 404; an analyst
gets 403 everywhere; content is written by officers, approved by directors.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from sqlalchemy import select

from campaigns import editing, preview, workflow
from campaigns.checks import has_errors
from campaigns.models import Campaign
from contacts.db import db
from contacts.models import Organisation
from webapp.api import ApiError, api_roles, bp, json_body, not_found, org_id
from webapp.extensions import limiter
from webapp.i18n import translate, translate_all
from webapp.models import User

READ = ("officer", "director", "admin")
# A test send is real mail to addresses anyone may type: keep it from becoming a relay.
TEST_SEND_LIMIT = "10 per minute; 60 per hour"


def _dt(value) -> str | None:
    return value.isoformat() if value is not None else None


def campaign_summary(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "uuid": c.uuid,
        "kind": c.kind,
        "name": c.name,
        "subject": c.subject,
        "status": c.status,
        "version": c.version,
        "list_ids": list(c.list_ids or []),
        "repermission": bool(c.is_repermission),
        "scheduled_at": _dt(c.scheduled_at),
        "created_at": _dt(c.created_at),
        "updated_at": _dt(c.updated_at),
    }


def transitions_json(org: int, campaign_id: int) -> list[dict[str, Any]]:
    trail = workflow.transitions_of(org, campaign_id)
    ids = {t.user_id for t in trail if t.user_id}
    emails = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())
        if ids
        else {}
    )
    return [
        {
            "from": t.from_status or None,
            "to": t.to_status,
            "user_id": t.user_id,
            "user": emails.get(t.user_id),
            "comment": t.comment,
            "at": _dt(t.created_at),
        }
        for t in trail
    ]


def campaign_json(c: Campaign) -> dict[str, Any]:
    return {
        **campaign_summary(c),
        "preheader": c.preheader,
        "segment_ids": list(c.segment_ids or []),
        "blocks": c.blocks,
        "event": c.event,
        "compiled_version": c.compiled_version,
        "parent_campaign_id": c.parent_campaign_id,
        "created_by_id": c.created_by_id,
        "approved_by_id": c.approved_by_id,
        "started_at": _dt(c.started_at),
        "finished_at": _dt(c.finished_at),
        "transitions": transitions_json(c.organisation_id, c.id),
    }


def campaign_or_404(campaign_id: int) -> Campaign:
    """The caller's body's campaign, or the API's 404 (audited) for any other id."""
    campaign = editing.get_campaign(org_id(), campaign_id)
    if campaign is None:
        raise not_found("campagne")
    return campaign


def _optional_body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    return json_body()


def _comment(body: dict[str, Any]) -> str:
    comment = body.get("comment", "")
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ApiError("invalid_comment", "Le commentaire doit être un texte.")
    return comment


@bp.get("/campaigns")
@api_roles(*READ)
def list_campaigns():
    """The body's campaigns, most recently changed first.
    ---
    get:
      summary: List campaigns
      parameters:
        - {in: query, name: status, schema: {type: string}}
      responses:
        200: {description: "{campaigns: [...]}"}
        403: {description: analyst}
    """
    status = request.args.get("status") or None
    return {
        "campaigns": [campaign_summary(c) for c in editing.list_campaigns(org_id(), status=status)]
    }


@bp.post("/campaigns")
@api_roles("officer")
def create_campaign():
    """Create a draft campaign (or from a ready-made model with ``template``).
    ---
    post:
      summary: Create a campaign
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                kind: {type: string, enum: [newsletter, invitation]}
                name: {type: string}
                subject: {type: string}
                preheader: {type: string}
                list_ids: {type: array, items: {type: integer}}
                segment_ids: {type: array, items: {type: integer}}
                blocks: {type: array, items: {type: object}}
                event:
                  type: object
                  properties:
                    title: {type: string}
                    starts_at: {type: string, format: date-time}
                    ends_at: {type: string, format: date-time}
                    location: {type: string}
                    map_url: {type: string}
                    rsvp_deadline: {type: string, format: date-time}
                    capacity: {type: integer}
                template: {type: string, description: "a ready-made model's key"}
                repermission:
                  type: boolean
                  description: >-
                    a re-permission campaign: sent only to the list members awaiting
                    confirmation (risky source or double opt-in), asking them to confirm
                    (the model "demande-reconsentement" sets it)
      responses:
        201: {description: the campaign}
        400: {description: "invalid content (the message names the block)"}
        403: {description: not an officer}
        404: {description: "a list or segment of another body"}
    """
    body = json_body()
    user = g.api_user
    if body.get("template"):
        campaign = editing.create_from_starter(
            org_id(),
            str(body["template"]),
            user_id=user.id,
            list_ids=editing.check_list_ids(org_id(), body.get("list_ids")),
        )
    else:
        campaign = editing.create_campaign(org_id(), body, user_id=user.id)
    db.session.commit()
    return campaign_json(campaign), 201


@bp.get("/campaigns/<int:campaign_id>")
@api_roles(*READ)
def get_campaign(campaign_id: int):
    """One campaign with its content and its review trail.
    ---
    get:
      summary: Get a campaign
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "the campaign, with transitions [{from, to, user, comment, at}]"}
        404: {description: unknown or another body's}
    """
    return campaign_json(campaign_or_404(campaign_id))


@bp.put("/campaigns/<int:campaign_id>")
@api_roles("officer")
def update_campaign(campaign_id: int):
    """Change a campaign's content or audience (only the keys given).

    Editing an approved or scheduled campaign sends it back to review.
    ---
    put:
      summary: Edit a campaign
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: {type: object, description: same keys as POST /campaigns}
      responses:
        200: {description: the campaign}
        400: {description: invalid content}
        403: {description: not an officer}
        404: {description: unknown or another body's}
        409: {description: sending began or ended}
    """
    campaign = campaign_or_404(campaign_id)
    body = json_body()
    editing.update_campaign(org_id(), campaign, body, user_id=g.api_user.id, role=g.api_user.role)
    db.session.commit()
    return campaign_json(campaign)


@bp.get("/campaigns/<int:campaign_id>/preview")
@api_roles(*READ)
def preview_campaign(campaign_id: int):
    """The current version as a recipient would get it (fictional values or a contact's).
    ---
    get:
      summary: Preview a campaign
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
        - {in: query, name: contact_id, schema: {type: integer}}
      responses:
        200:
          description: the message
          content:
            application/json:
              schema:
                type: object
                properties:
                  html: {type: string}
                  text: {type: string}
                  mjml: {type: string}
                  subject: {type: string}
        404: {description: unknown campaign or contact}
    """
    campaign = campaign_or_404(campaign_id)
    parts = preview.preview_parts(org_id(), campaign, contact_id=request.args.get("contact_id"))
    db.session.commit()  # a first compile stores its result
    return parts


@bp.get("/campaigns/<int:campaign_id>/checks")
@api_roles(*READ)
def campaign_checks(campaign_id: int):
    """The checks run before review (errors stop a submission).
    ---
    get:
      summary: Pre-review checks
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "{checks: [{code, level, message, block?}], can_submit}"}
    """
    campaign = campaign_or_404(campaign_id)
    found = editing.campaign_checks(org_id(), campaign)
    db.session.commit()
    return {"checks": translate_all(found), "can_submit": not has_errors(found)}


@bp.post("/campaigns/<int:campaign_id>/test-send")
@limiter.limit(TEST_SEND_LIMIT, key_func=lambda: f"test-send:{g.api_user.id}")
@api_roles("officer", "director")
def test_send(campaign_id: int):
    """Send the current version to up to 5 addresses, subject prefixed [TEST].
    ---
    post:
      summary: Test send
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [emails]
              properties:
                emails: {type: array, items: {type: string}, maxItems: 5}
                contact_id: {type: integer, description: "personalise with this contact"}
      responses:
        200: {description: "{results: [{email, outcome, message}]}"}
        400: {description: bad or too many addresses}
        429: {description: "more than 10 test sends a minute (60 an hour)"}
    """
    campaign = campaign_or_404(campaign_id)
    body = json_body()
    org = db.session.get(Organisation, org_id())
    results = preview.send_test(
        org,
        campaign,
        body.get("emails"),
        smtp_url=current_app.config.get("CRIEUR_SMTP_URL", ""),
        contact_id=body.get("contact_id"),
    )
    db.session.commit()
    return {"results": results}


@bp.post("/campaigns/<int:campaign_id>/submit")
@api_roles("officer")
def submit_campaign(campaign_id: int):
    """Submit a draft for review (refused with the checks when one is an error).
    ---
    post:
      summary: Submit for review
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {comment: {type: string}}}
      responses:
        200: {description: "the campaign, status in_review"}
        400: {description: "checks_failed: details.checks lists them"}
        403: {description: not an officer}
        409: {description: not a draft}
    """
    campaign = campaign_or_404(campaign_id)
    body = _optional_body()
    editing.submit_campaign(
        org_id(), campaign, user_id=g.api_user.id, role=g.api_user.role, comment=_comment(body)
    )
    db.session.commit()
    return campaign_json(campaign)


@bp.post("/campaigns/<int:campaign_id>/approve")
@api_roles("director")
def approve_campaign(campaign_id: int):
    """A director approves a campaign in review.
    ---
    post:
      summary: Approve
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                comment: {type: string}
                version: {type: integer, description: "the version reviewed; 409 if it changed"}
      responses:
        200: {description: "the campaign, status approved"}
        403: {description: not a director}
        400: {description: "checks_failed: the version under review has errors"}
        409: {description: "not in review, or edited since"}
    """
    campaign = campaign_or_404(campaign_id)
    body = _optional_body()
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ApiError("invalid_version", "« version » doit être un nombre entier.")
    editing.approve_campaign(
        org_id(),
        campaign,
        user_id=g.api_user.id,
        role=g.api_user.role,
        comment=_comment(body),
        version=version,
    )
    db.session.commit()
    return campaign_json(campaign)


@bp.post("/campaigns/<int:campaign_id>/send-back")
@api_roles("director")
def send_back_campaign(campaign_id: int):
    """A director returns a campaign in review to its author, with a comment.
    ---
    post:
      summary: Send back to draft
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [comment], properties: {comment: {type: string}}}
      responses:
        200: {description: "the campaign, status draft"}
        400: {description: comment missing}
        403: {description: not a director}
        409: {description: not in review}
    """
    campaign = campaign_or_404(campaign_id)
    body = _optional_body()
    workflow.send_back_campaign(org_id(), campaign, g.api_user.id, g.api_user.role, _comment(body))
    db.session.commit()
    return campaign_json(campaign)


@bp.post("/campaigns/<int:campaign_id>/duplicate")
@api_roles("officer")
def duplicate_campaign(campaign_id: int):
    """A new draft with the same content and lists.
    ---
    post:
      summary: Duplicate
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        201: {description: the new campaign}
    """
    campaign = campaign_or_404(campaign_id)
    copy = editing.duplicate_campaign(org_id(), campaign, user_id=g.api_user.id)
    db.session.commit()
    return campaign_json(copy), 201


@bp.get("/campaign-templates")
@api_roles(*READ)
def campaign_templates():
    """The ready-made starting points (use their key as ``template`` in POST /campaigns).
    ---
    get:
      summary: Ready-made models
      responses:
        200: {description: "{templates: [{key, name, kind}]}"}
    """
    return {"templates": [s | {"name": translate(s["name"])} for s in editing.starters()]}
