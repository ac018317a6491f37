"""Sending pages: confirm a send (who gets it, who is left out and why), follow it live,
pause, resume or cancel it, and after any incident see who got it, who did not yet, and
who may have got it twice.

Thin views over :mod:`campaigns.sending`, :mod:`campaigns.audience` and
:mod:`campaigns.progress`; the live page is refreshed by
``static/sending-progress.js`` polling :func:`progress_json` (no inline script).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from campaigns import actors, audience, dbclock, editing, progress, resend, sending
from campaigns.models import Campaign, CampaignStatus
from contacts.db import DomainError, db
from contacts.i18n import N_
from webapp.auth import audit, current_org_id, roles_required
from webapp.i18n import error_text

bp = Blueprint("sending", __name__, url_prefix="/sending")

S = CampaignStatus
READ = ("officer", "director", "admin")
SENDERS = ("officer", "director")
CONFIRMABLE = (S.APPROVED, S.HELD, S.SCHEDULED)
LISTS = {
    "sent": N_("Ont reçu le message"),
    "pending": N_("Pas encore envoyé"),
    "duplicates": N_("L'ont peut-être reçu deux fois"),
    "unknown": N_("Réception incertaine (connexion coupée après l'envoi)"),
    "failed": N_("Échecs"),
    "skipped": N_("Non envoyé (désinscription, suppression ou annulation)"),
}


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = editing.get_campaign(current_org_id(), campaign_id)
    if campaign is None:
        audit("not_found", f"{request.method} {request.path}")
        abort(404)
    return campaign


def _back(campaign: Campaign):
    return redirect(url_for("sending.show", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/confirm")
@roles_required(*SENDERS)
def confirm(campaign_id: int):
    """Before sending: the audience count and the reasons others are left out."""
    campaign = _campaign_or_404(campaign_id)
    if campaign.status not in CONFIRMABLE:
        return _back(campaign)
    preview = audience.preview_audience(campaign.organisation_id, campaign)
    lists = editing.target_lists(campaign.organisation_id, campaign.list_ids or [])
    return render_template("sending/confirm.html", campaign=campaign, preview=preview, lists=lists)


@bp.route("/<int:campaign_id>/send", methods=["POST"])
@roles_required(*SENDERS)
def send(campaign_id: int):
    """Send now, or schedule when the form gives a time (Paris time)."""
    campaign = _campaign_or_404(campaign_id)
    try:
        at = sending.parse_send_at(request.form.get("at"))
        if at is not None and at > dbclock.db_now():
            sending.schedule_sending(
                campaign.organisation_id, campaign, at, current_user.id, current_user.role
            )
            db.session.commit()
            flash(_("Envoi programmé."), "success")
            return _back(campaign)
        count = sending.start_sending(
            campaign.organisation_id, campaign, current_user.id, current_user.role
        )
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        if campaign.status in CONFIRMABLE:
            return redirect(url_for("sending.confirm", campaign_id=campaign_id))
        return _back(campaign)
    db.session.commit()
    actors.start_campaign_soon(campaign.id)
    flash(_("Envoi lancé vers %(n)s destinataires.", n=count), "success")
    return _back(campaign)


def _action(campaign_id: int, service, message: str, *, restart: bool = False):
    campaign = _campaign_or_404(campaign_id)
    try:
        service(campaign.organisation_id, campaign, current_user.id, current_user.role)
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return _back(campaign)
    db.session.commit()
    if restart:
        actors.start_campaign_soon(campaign.id)
    flash(message, "success")
    return _back(campaign)


@bp.route("/<int:campaign_id>/pause", methods=["POST"])
@roles_required(*SENDERS)
def pause(campaign_id: int):
    return _action(campaign_id, sending.pause_sending, _("Envoi mis en pause."))


@bp.route("/<int:campaign_id>/resume", methods=["POST"])
@roles_required(*SENDERS)
def resume(campaign_id: int):
    return _action(campaign_id, sending.resume_sending, _("Envoi repris."), restart=True)


@bp.route("/<int:campaign_id>/cancel", methods=["POST"])
@roles_required(*SENDERS)
def cancel(campaign_id: int):
    return _action(campaign_id, sending.cancel_sending, _("Envoi annulé."))


@bp.route("/<int:campaign_id>")
@roles_required(*READ)
def show(campaign_id: int):
    """The live progress page, and after the send the account of who got what."""
    campaign = _campaign_or_404(campaign_id)
    if campaign.status in (S.APPROVED, S.HELD) and current_user.role in SENDERS:
        return redirect(url_for("sending.confirm", campaign_id=campaign.id))
    reading = progress.progress(campaign.organisation_id, campaign)
    return render_template(
        "sending/progress.html",
        campaign=campaign,
        progress=reading,
        data=reading.as_dict(),
        lists=LISTS,
        can_act=current_user.role in SENDERS,
        resendable=_resendable(campaign),
    )


def _resendable(campaign: Campaign) -> int | None:
    """How many non-openers a resend would reach; None when it is not possible."""
    from webapp.api.sending import engaged_deliveries

    if current_user.role != "officer":
        return None
    try:
        resend.check_resend_allowed(campaign.organisation_id, campaign)
    except DomainError:
        return None
    return resend.count_resendable(
        campaign.organisation_id, campaign, engaged_deliveries(campaign.id)
    )


@bp.route("/<int:campaign_id>/resend", methods=["POST"])
@roles_required("officer")
def resend_non_openers(campaign_id: int):
    """A new draft for those who did not open; review and send it as usual."""
    from webapp.api.sending import engaged_deliveries

    campaign = _campaign_or_404(campaign_id)
    try:
        child, count = resend.create_resend(
            campaign.organisation_id,
            campaign,
            engaged_deliveries(campaign.id),
            user_id=current_user.id,
        )
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc), "error")
        return _back(campaign)
    db.session.commit()
    flash(_("Relance créée pour %(n)s destinataires : relisez-la puis soumettez-la.", n=count),
          "success")  # fmt: skip
    return redirect(url_for("campaigns.show", campaign_id=child.id))


@bp.route("/<int:campaign_id>/progress.json")
@roles_required(*READ)
def progress_json(campaign_id: int):
    """What the live page polls."""
    campaign = _campaign_or_404(campaign_id)
    return jsonify(progress.progress(campaign.organisation_id, campaign).as_dict())


@bp.route("/<int:campaign_id>/deliveries/<which>")
@roles_required(*READ)
def deliveries(campaign_id: int, which: str):
    """One list of recipients (sent, pending, possible duplicates…), 200 per page."""
    campaign = _campaign_or_404(campaign_id)
    if which not in LISTS:
        abort(404)
    after = request.args.get("after", 0, type=int)
    rows = progress.delivery_rows(
        campaign.organisation_id, campaign.id, which, after_id=max(after, 0), limit=200
    )
    return render_template(
        "sending/deliveries.html",
        campaign=campaign,
        which=which,
        title=LISTS[which],
        rows=rows,
        next_after=rows[-1]["id"] if len(rows) == 200 else None,
    )
