"""``/campaigns/{id}/send|pause|resume|cancel``, progress, audience and deliveries.

Thin handlers over :mod:`campaigns.sending`, :mod:`campaigns.audience` and
:mod:`campaigns.progress`: parse, call one service, commit, then queue the work (after the
commit, so the worker sees the rows; a broker that is down only delays the start, the
reconciler finds the campaign). Officers and directors send an approved campaign; another
body's campaign is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import g, request
from sqlalchemy import Select, select

from campaigns import actors, audience, dbclock, progress, resend, sending
from campaigns.models import Campaign
from contacts.db import db
from webapp.api import ApiError, api_roles, bp, json_body, org_id
from webapp.api.campaigns import campaign_or_404

SENDERS = ("officer", "director")
READ = ("officer", "director", "admin")


def engaged_deliveries(campaign_id: int) -> Select:
    """``SELECT delivery_id`` of the deliveries with an open or a click (for resends)."""
    from analytics.models import EventKind, TrackingEvent

    return select(TrackingEvent.delivery_id).where(
        TrackingEvent.campaign_id == campaign_id,
        TrackingEvent.kind.in_((EventKind.OPEN, EventKind.CLICK)),
        TrackingEvent.delivery_id.is_not(None),
    )


def _body() -> dict[str, Any]:
    return json_body() if request.get_data() else {}


def _state(campaign: Campaign, **extra: Any) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "status": campaign.status,
        "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        **extra,
    }


@bp.post("/campaigns/<int:campaign_id>/send")
@api_roles(*SENDERS)
def send_campaign(campaign_id: int):
    """Send an approved campaign now, or schedule it with ``{"at": ISO 8601}``.
    ---
    post:
      summary: Send now or schedule
      description: >
        Freezes the audience (one delivery per sendable contact) and starts sending.
        With "at" in the future the campaign is scheduled instead. A held campaign (its
        schedule passed while the server was down) is sent by this call, which confirms it.
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                at: {type: string, format: date-time, description: "Paris time without offset"}
      responses:
        202: {description: "sending (recipients) or scheduled (scheduled_at)"}
        403: {description: not an officer or director}
        404: {description: unknown campaign}
        409: {description: "not approved (invalid_transition), or nobody to send to"}
    """
    campaign = campaign_or_404(campaign_id)
    at = sending.parse_send_at(_body().get("at"))
    user = g.api_user
    if at is not None and at > dbclock.db_now():
        sending.schedule_sending(org_id(), campaign, at, user.id, user.role)
        db.session.commit()
        return _state(campaign), 202
    recipients = sending.start_sending(org_id(), campaign, user.id, user.role)
    db.session.commit()
    actors.start_campaign_soon(campaign.id)
    return _state(campaign, recipients=recipients), 202


@bp.post("/campaigns/<int:campaign_id>/pause")
@api_roles(*SENDERS)
def pause_campaign(campaign_id: int):
    """Pause a campaign being sent: nothing more leaves until it is resumed.
    ---
    post:
      summary: Pause
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "status paused"}
        409: {description: not sending}
    """
    campaign = campaign_or_404(campaign_id)
    sending.pause_sending(org_id(), campaign, g.api_user.id, g.api_user.role)
    db.session.commit()
    return _state(campaign)


@bp.post("/campaigns/<int:campaign_id>/resume")
@api_roles(*SENDERS)
def resume_campaign(campaign_id: int):
    """Resume a paused campaign: only the messages not yet sent are sent.
    ---
    post:
      summary: Resume
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        202: {description: "status sending, remaining: messages still to send"}
        409: {description: not paused}
    """
    campaign = campaign_or_404(campaign_id)
    remaining = sending.resume_sending(org_id(), campaign, g.api_user.id, g.api_user.role)
    db.session.commit()
    actors.start_campaign_soon(campaign.id)
    return _state(campaign, remaining=remaining), 202


@bp.post("/campaigns/<int:campaign_id>/cancel")
@api_roles(*SENDERS)
def cancel_campaign(campaign_id: int):
    """Cancel a campaign (approved, scheduled, held, sending or paused).
    ---
    post:
      summary: Cancel
      description: Messages already handed to the relay stay sent; the others are cancelled.
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        200: {description: "status cancelled, cancelled: messages that will not be sent"}
        409: {description: already sent or cancelled}
    """
    campaign = campaign_or_404(campaign_id)
    cancelled = sending.cancel_sending(org_id(), campaign, g.api_user.id, g.api_user.role)
    db.session.commit()
    return _state(campaign, cancelled=cancelled)


@bp.get("/campaigns/<int:campaign_id>/progress")
@api_roles(*READ)
def campaign_progress(campaign_id: int):
    """Where a send stands: counts by delivery status, rate, time left, possible duplicates.
    ---
    get:
      summary: Sending progress
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: progress
          content:
            application/json:
              schema:
                type: object
                properties:
                  status: {type: string}
                  recipients: {type: integer}
                  queued: {type: integer}
                  sending: {type: integer}
                  sent: {type: integer}
                  deferred: {type: integer}
                  failed: {type: integer}
                  unknown: {type: integer}
                  skipped: {type: integer}
                  cancelled: {type: integer}
                  possible_duplicates: {type: integer}
                  rate: {type: number, description: messages per second over the last minute}
                  eta_seconds: {type: integer, nullable: true}
    """
    campaign = campaign_or_404(campaign_id)
    return progress.progress(org_id(), campaign).as_dict()


@bp.get("/campaigns/<int:campaign_id>/audience")
@api_roles(*READ)
def campaign_audience(campaign_id: int):
    """Who a send would reach now, and how many are left out and why.
    ---
    get:
      summary: Audience preview
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        200:
          description: "recipients, left_out: {pending, risky, unsubscribed, bounced, suppressed}"
    """
    campaign = campaign_or_404(campaign_id)
    return audience.preview_audience(org_id(), campaign).as_dict()


@bp.get("/campaigns/<int:campaign_id>/deliveries")
@api_roles(*READ)
def campaign_deliveries(campaign_id: int):
    """One page of deliveries: who got it, who not yet, who may have got it twice.
    ---
    get:
      summary: Deliveries by outcome
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
        - in: query
          name: which
          schema: {type: string, enum: [sent, pending, duplicates, failed, unknown, skipped]}
        - {in: query, name: after, schema: {type: integer}, description: "last id seen"}
        - {in: query, name: limit, schema: {type: integer, maximum: 1000}}
      responses:
        200: {description: "deliveries (id, email, status, attempts, sent_at, last_error)"}
        400: {description: unknown filter}
    """
    campaign = campaign_or_404(campaign_id)
    which = request.args.get("which", "sent")
    try:
        after = int(request.args.get("after", 0))
        limit = int(request.args.get("limit", 100))
    except ValueError:
        raise ApiError("invalid_page", "« after » et « limit » sont des entiers.") from None
    rows = progress.delivery_rows(org_id(), campaign.id, which, after_id=after, limit=limit)
    for row in rows:
        for key in ("sent_at", "next_attempt_at"):
            row[key] = row[key].isoformat() if row[key] else None
    return {"which": which, "deliveries": rows, "next_after": rows[-1]["id"] if rows else None}


@bp.post("/campaigns/<int:campaign_id>/resend")
@api_roles("officer")
def resend_campaign(campaign_id: int):
    """Create a draft resending a sent campaign to those who did not open it.
    ---
    post:
      summary: Resend to non-openers
      description: >
        Only with the per-contact tracking policy, and only to recipients who consented
        to it. The new campaign (parent_campaign_id = this one) is a draft whose audience
        is fixed now; it is reviewed and sent like any other.
      parameters:
        - {in: path, name: campaign_id, required: true, schema: {type: integer}}
      responses:
        201: {description: "id of the new campaign, recipients"}
        403: {description: not an officer}
        409: {description: "tracking_not_allowed, not_sent or nobody_to_resend"}
    """
    parent = campaign_or_404(campaign_id)
    child, count = resend.create_resend(
        org_id(), parent, engaged_deliveries(parent.id), user_id=g.api_user.id
    )
    db.session.commit()
    return {
        "id": child.id,
        "status": child.status,
        "parent_campaign_id": parent.id,
        "recipients": count,
    }, 201
