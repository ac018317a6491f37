"""Public pages reached from e-mails and the body's website: no sign-in, signed tokens.

- ``/subscribe/<token>``: a list's subscription form, embeddable by iframe (these pages
  alone allow any ``frame-ancestors``), with a honeypot and a rate limit; double opt-in.
- ``/confirm/<token>``: the confirmation page (a button: link scanners follow links).
- ``/u/<token>``: RFC 8058 one-click unsubscribe. GET shows a page with a button and never
  unsubscribes; POST with ``List-Unsubscribe=One-Click`` unsubscribes without login,
  idempotently, answering 200 without a redirect.
- ``/p/<token>``, ``/p/signin/<token>``, ``/p/ask/<slug>``: the preference centre, from an
  e-mail link or a sign-in link sent to whoever asks (same answer whether or not the
  address is known).

Tokens are described in :mod:`analytics.links`. A forged, foreign or expired token gets a
4xx page; nothing is changed.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
)
from flask_babel import gettext as _

from analytics import contact_data, links
from analytics.tokens import BadToken
from campaigns.mailer import send_transactional
from contacts import consent, memberships, people
from contacts.db import DomainError, db
from contacts.models import (
    Contact,
    ContactStatus,
    MailingList,
    Organisation,
    SubscriptionStatus,
    TrackingPolicy,
)
from webapp.extensions import csrf, limiter
from webapp.i18n import error_text
from webapp.security import CSP

bp = Blueprint("public", __name__)
log = logging.getLogger(__name__)

FORM_VERSION = "2025-01"
HONEYPOT = "site_web"
EMBEDDABLE_CSP = CSP.replace("frame-ancestors 'self'", "frame-ancestors *")
SUBSCRIBE_LIMIT = "5 per minute;30 per hour"
ASK_LIMIT = "3 per minute;10 per hour"
LINK_LIMIT = "30 per minute"  # confirmation and preference pages, reached from an e-mail
# No limit on the one-click POST: mailbox providers send them from a few addresses, and
# RELIABILITY.md asks for 1,000 a minute, all answered 2xx; a forged token costs one MAC.


def _secret() -> str:
    return current_app.config["CRIEUR_SECRET_KEY"]


def _public_url() -> str:
    return current_app.config["CRIEUR_PUBLIC_URL"]


def _gone(status: int = 404, message: str | None = None) -> Response:
    text = message or _("Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier.")
    return Response(render_template("public/invalid.html", message=text), status=status)


def _org(org_id: int) -> Organisation:
    org = db.session.get(Organisation, org_id)
    if org is None:
        abort(404)
    return org


def _contact(org_id: int, contact_id: int) -> Contact:
    contact = people.get_contact(org_id, contact_id)
    if contact is None:
        abort(404)
    return contact


def _list(org_id: int, list_id: int) -> MailingList:
    from contacts.lists import get_list

    mlist = get_list(org_id, list_id)
    if mlist is None:
        abort(404)
    return mlist


def consent_wording(org: Organisation, mlist: MailingList) -> str:
    """The sentence shown next to the button, kept in the ledger as evidence."""
    return (
        f"J'accepte de recevoir « {mlist.name} » de {org.name} par e-mail. "
        "Je peux me désinscrire à tout moment par le lien présent dans chaque message."
    )


TRACKING_WORDING = (
    "J'accepte que l'ouverture des messages et les clics sur leurs liens soient mesurés "
    "individuellement, pour améliorer les communications."
)


def _send(org: Organisation, to: str, subject: str, text: str) -> bool:
    """Send a transactional message; False (logged) when it could not go out."""
    try:
        result = send_transactional(
            org, to, subject, text, smtp_url=current_app.config.get("CRIEUR_SMTP_URL", "")
        )
    except DomainError as exc:
        log.warning("transactional mail not sent for body %s: %s", org.id, exc.code)
        return False
    outcome = getattr(result, "outcome", "sent")
    if outcome != "sent":
        log.warning("transactional mail for body %s: %s", org.id, outcome)
    return outcome == "sent"


def _send_confirmation(org: Organisation, mlist: MailingList, contact: Contact) -> bool:
    url = links.confirm_url(_public_url(), _secret(), org.id, contact.id, mlist.id)
    text = (
        f"Bonjour,\n\n"
        f"Vous avez demandé à recevoir « {mlist.name} » de {org.name}.\n"
        f"Pour confirmer votre inscription, ouvrez ce lien (valable 7 jours) :\n\n{url}\n\n"
        "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : "
        "vous ne recevrez rien d'autre.\n\n"
        f"{org.name}\n{org.postal_address}\n"
    )
    return _send(org, contact.email, f"Confirmez votre inscription : {mlist.name}", text)


def _send_already(org: Organisation, mlist: MailingList, contact: Contact) -> bool:
    url = links.preferences_url(_public_url(), _secret(), org.id, contact.id)
    text = (
        f"Bonjour,\n\n"
        f"Quelqu'un (sans doute vous) a demandé à recevoir « {mlist.name} » de {org.name}.\n"
        "Vous y êtes déjà inscrit·e : il n'y a rien à faire.\n\n"
        f"Pour gérer vos abonnements : {url}\n\n{org.name}\n"
    )
    return _send(org, contact.email, f"Vous êtes déjà inscrit·e : {mlist.name}", text)


# ---------------------------------------------------------------------------- subscription


def _embeddable(body: str, status: int = 200) -> Response:
    response = Response(body, status=status)
    response.headers["Content-Security-Policy"] = EMBEDDABLE_CSP
    return response


def _subscribe_target(token: str) -> tuple[Organisation, MailingList]:
    try:
        org_id, list_id = links.read_subscribe_token(_secret(), token)
    except BadToken:
        abort(404)
    return _org(org_id), _list(org_id, list_id)


@bp.get("/subscribe/<token>")
def subscribe(token: str):
    org, mlist = _subscribe_target(token)
    return _embeddable(_subscribe_page(org, mlist, token))


def _subscribe_page(
    org: Organisation, mlist: MailingList, token: str, error: str = "", values: Any = None
) -> str:
    return render_template(
        "public/subscribe.html",
        org=org,
        mlist=mlist,
        token=token,
        embed=request.args.get("embed") == "1",
        wording=consent_wording(org, mlist),
        tracking_wording=TRACKING_WORDING,
        ask_tracking=org.tracking_policy == TrackingPolicy.PER_CONTACT,
        honeypot=HONEYPOT,
        error=error,
        values=values or {},
    )


@bp.post("/subscribe/<token>")
@csrf.exempt  # the form lives in an iframe on the body's site: no session cookie there
@limiter.limit(SUBSCRIBE_LIMIT)
def subscribe_post(token: str):
    org, mlist = _subscribe_target(token)
    embed = request.args.get("embed") == "1"
    if request.form.get(HONEYPOT):
        # A bot filled the hidden field: answer as if all went well, store nothing.
        return _embeddable(render_template("public/subscribe_done.html", org=org, embed=embed))
    form = request.form
    try:
        address = people.checked_email(form.get("email", ""))
    except DomainError as exc:
        page = _subscribe_page(org, mlist, token, error=error_text(exc), values=form)
        return _embeddable(page, status=400)
    if not form.get("consent"):
        page = _subscribe_page(
            org, mlist, token, error=_("Cochez la case pour confirmer votre accord."), values=form
        )
        return _embeddable(page, status=400)
    outcome = subscribe_person(
        org,
        mlist,
        address,
        first_name=form.get("first_name", ""),
        last_name=form.get("last_name", ""),
        tracking=bool(form.get("tracking")) and org.tracking_policy == TrackingPolicy.PER_CONTACT,
        form_url=request.base_url,
    )
    db.session.commit()
    contact = people.get_contact(org.id, outcome["contact_id"])
    if outcome["state"] == "pending":
        _send_confirmation(org, mlist, contact)
    elif outcome["state"] == "already":
        _send_already(org, mlist, contact)
    return _embeddable(render_template("public/subscribe_done.html", org=org, embed=embed))


def subscribe_person(
    org: Organisation,
    mlist: MailingList,
    address: str,
    *,
    first_name: str,
    last_name: str,
    tracking: bool,
    form_url: str,
) -> dict[str, Any]:
    """Grant from the web form; returns the contact id and ``pending|active|already``."""
    contact = people.find_contact(org.id, address)
    if contact is None:
        contact = people.create_contact(
            org.id, address, secret=_secret(), first_name=first_name, last_name=last_name
        )
    sub = consent.get_subscription(org.id, contact.id, mlist.id)
    if sub is not None and memberships.subscription_is_sendable(sub, contact):
        return {"contact_id": contact.id, "state": "already"}
    if sub is None or sub.status != SubscriptionStatus.PENDING:
        # Names are taken only from a new request, never to overwrite silently.
        if first_name and not contact.first_name:
            contact.first_name = people.clean_text(first_name, people.NAME_MAX)
        if last_name and not contact.last_name:
            contact.last_name = people.clean_text(last_name, people.NAME_MAX)
    evidence = {
        "form_url": form_url,
        "form_version": FORM_VERSION,
        "wording": consent_wording(org, mlist),
        "double_opt_in": bool(mlist.double_opt_in),
    }
    if org.tracking_policy == TrackingPolicy.PER_CONTACT:
        evidence["tracking_consent"] = tracking
        evidence["tracking_wording"] = TRACKING_WORDING
    consent.record_consent(
        org.id,
        contact.id,
        mlist.id,
        "grant",
        "consent",
        "web_form",
        evidence,
        tracking_consent=tracking,
    )
    sub = consent.get_subscription(org.id, contact.id, mlist.id)
    state = "active" if memberships.subscription_is_sendable(sub, contact) else "pending"
    return {"contact_id": contact.id, "state": state}


# ---------------------------------------------------------------------------- confirmation


def _confirm_target(token: str) -> tuple[links.ConfirmToken, Organisation, MailingList, Contact]:
    try:
        data = links.read_confirm_token(_secret(), token)
    except BadToken as exc:
        if exc.reason == "expired":
            abort(410)
        abort(404)
    org = _org(data.org_id)
    return data, org, _list(org.id, data.list_id), _contact(org.id, data.contact_id)


@bp.get("/confirm/<token>")
def confirm(token: str):
    _, org, mlist, contact = _confirm_target(token)
    if contact.status == ContactStatus.ERASED:
        abort(404)
    return render_template("public/confirm.html", org=org, mlist=mlist, token=token)


@bp.post("/confirm/<token>")
@limiter.limit(LINK_LIMIT)
def confirm_post(token: str):
    import datetime as dt

    data, org, mlist, contact = _confirm_target(token)
    asked_at = dt.datetime.fromtimestamp(data.issued_at, dt.UTC)
    consent.confirm_subscription(
        org.id,
        contact.id,
        mlist.id,
        _secret(),
        {
            "method": "repermission_link"
            if data.purpose == links.REPERMISSION_PURPOSE
            else "double_opt_in_link",
            "link_issued_at": asked_at.isoformat(),
        },
        asked_at=asked_at,
    )
    db.session.commit()
    prefs = links.preferences_url(_public_url(), _secret(), org.id, contact.id)
    return render_template("public/confirmed.html", org=org, mlist=mlist, prefs_url=prefs)


# ---------------------------------------------------------------------------- unsubscribe


def _unsubscribe_target(token: str) -> tuple[links.UnsubscribeToken, Organisation, Contact]:
    try:
        data = links.read_unsubscribe_token(_secret(), token)
    except BadToken:
        abort(404)
    org = _org(data.org_id)
    contact = _contact(org.id, data.contact_id)
    _list(org.id, data.list_id)
    return data, org, contact


@bp.get("/u/<token>")
def unsubscribe(token: str):
    """The page a person sees from the link: a button, never an unsubscribe by itself."""
    data, org, contact = _unsubscribe_target(token)
    prefs = links.preferences_url(_public_url(), _secret(), org.id, contact.id)
    done = contact.status != ContactStatus.ACTIVE
    return render_template(
        "public/unsubscribe.html", org=org, token=token, prefs_url=prefs, done=done
    )


@bp.post("/u/<token>")
@csrf.exempt  # RFC 8058: the mailbox provider posts without cookies; the token authorises
def unsubscribe_post(token: str):
    data, org, contact = _unsubscribe_target(token)
    if request.form.get("List-Unsubscribe") != "One-Click":
        abort(400)
    if contact.status != ContactStatus.ERASED:
        changed = consent.withdraw_all(
            org.id,
            contact.id,
            _secret(),
            method="one_click",
            evidence={"list_id": data.list_id, "delivery_id": data.delivery_id or None},
        )
        if changed:
            contact_data.record_unsubscribe(org, contact.id, data.list_id, data.delivery_id)
        db.session.commit()
    # 200 with a page, never a redirect (RFC 8058 §3.2).
    return render_template("public/unsubscribed.html", org=org)


# ---------------------------------------------------------------------------- preferences


def _prefs_from(kind: str, token: str) -> tuple[Organisation, Contact]:
    try:
        if kind == "signin":
            org_id, contact_id = links.read_signin_token(_secret(), token)
        else:
            org_id, contact_id = links.read_preferences_token(_secret(), token)
    except BadToken as exc:
        if exc.reason == "expired":
            abort(410)
        abort(404)
    org = _org(org_id)
    contact = _contact(org.id, contact_id)
    if contact.status == ContactStatus.ERASED:
        abort(404)
    return org, contact


@bp.route("/p/<token>", methods=["GET", "POST"])
@limiter.limit(LINK_LIMIT, methods=["POST"])
def preferences(token: str):
    return _preferences("prefs", token)


@bp.route("/p/signin/<token>", methods=["GET", "POST"])
@limiter.limit(LINK_LIMIT, methods=["POST"])
def preferences_signin(token: str):
    return _preferences("signin", token)


def _preferences(kind: str, token: str):
    org, contact = _prefs_from(kind, token)
    if request.method == "POST":
        if request.form.get("action") == "unsubscribe_all":
            consent.withdraw_all(org.id, contact.id, _secret(), method="preference_centre")
            db.session.commit()
            return render_template("public/unsubscribed.html", org=org)
        save_preferences(org, contact, request.form, form_url=request.base_url)
        db.session.commit()
        flash(_("Vos préférences sont enregistrées."), "success")
        return redirect(request.base_url)
    mlists = _offered_lists(org.id, contact.id)
    subs = {m.id: s for s, m in memberships.subscriptions_of(org.id, contact.id)}
    return render_template(
        "public/preferences.html",
        org=org,
        contact=contact,
        lists=mlists,
        subs=subs,
        suppressed=contact.status != ContactStatus.ACTIVE,
        ask_tracking=org.tracking_policy == TrackingPolicy.PER_CONTACT,
        tracking_on=any(s.tracking_consent for s in subs.values()),
        tracking_wording=TRACKING_WORDING,
    )


def _offered_lists(org_id: int, contact_id: int) -> list[MailingList]:
    from contacts.lists import all_lists

    return all_lists(org_id)


def save_preferences(org: Organisation, contact: Contact, form: Any, *, form_url: str) -> None:
    """Apply the preference centre's form: names, lists ticked or not, measurement."""
    people.update_contact(
        org.id,
        contact.id,
        {"first_name": form.get("first_name", ""), "last_name": form.get("last_name", "")},
    )
    wanted = {int(v) for v in form.getlist("lists") if str(v).isdigit()}
    subs = {m.id: s for s, m in memberships.subscriptions_of(org.id, contact.id)}
    evidence = {"method": "preference_centre", "form_url": form_url, "form_version": FORM_VERSION}
    for mlist in _offered_lists(org.id, contact.id):
        sub = subs.get(mlist.id)
        on = sub is not None and sub.status != SubscriptionStatus.WITHDRAWN
        if mlist.id in wanted and (not on or sub.status == SubscriptionStatus.PENDING):
            if not on:
                consent.record_consent(
                    org.id, contact.id, mlist.id, "grant", "consent", "web_form", evidence
                )
            # The link came to this mailbox: that is the confirmation double opt-in asks for.
            consent.confirm_subscription(org.id, contact.id, mlist.id, _secret(), evidence)
        elif mlist.id not in wanted and on:
            consent.record_consent(org.id, contact.id, mlist.id, "withdraw", evidence=evidence)
    if org.tracking_policy == TrackingPolicy.PER_CONTACT:
        consent.record_tracking_consent(
            org.id,
            contact.id,
            bool(form.get("tracking")),
            {**evidence, "wording": TRACKING_WORDING},
        )


@bp.route("/p/ask/<slug>", methods=["GET", "POST"])
@limiter.limit(ASK_LIMIT, methods=["POST"])
def ask_link(slug: str):
    """Ask for a sign-in link to the preference centre: one answer, known address or not."""
    from contacts.organisations import get_by_slug

    org = get_by_slug(slug)
    if org is None:
        abort(404)
    if request.method == "GET":
        return render_template("public/ask.html", org=org, honeypot=HONEYPOT)
    if not request.form.get(HONEYPOT):
        contact = people.find_contact(org.id, request.form.get("email", "")[:400])
        if contact is not None and contact.status != ContactStatus.ERASED:
            url = links.signin_url(_public_url(), _secret(), org.id, contact.id)
            text = (
                f"Bonjour,\n\nVoici votre lien pour gérer vos abonnements à {org.name} "
                f"(valable 24 heures) :\n\n{url}\n\n"
                "Si vous n'avez rien demandé, ignorez ce message.\n"
            )
            _send(org, contact.email, f"Vos abonnements à {org.name}", text)
    return render_template("public/ask_done.html", org=org)


@bp.errorhandler(404)
def not_found(exc: Any):
    return _gone(404)


@bp.errorhandler(410)
def gone(exc: Any):
    return _gone(410, _("Ce lien a expiré. Vous pouvez refaire votre demande."))
