"""Sending one batch of a campaign: claim rows, re-check them, render, hand to SMTP, record.

:func:`send_batch` is what the ``deliver_batch`` actor runs. A batch is an id range
``[lo_id, hi_id]`` of the campaign's delivery rows (ids only in the queue message). It
claims the range's due rows a few at a time (:func:`campaigns.claims.claim_rows`),
re-checks before each message that the campaign is still ``sending`` and the contact
still sendable (a later unsubscribe wins, checked at claim and every ``recheck_seconds``),
waits for the process's rate budget, renders the message by substitution into the
campaign's pre-built parts (:class:`MessageContext`, cached per process: MJML and the
MIME frame are never rebuilt per recipient), and sends it over the body's reused SMTP
connections (:func:`campaigns.mailer.transport_for`).

Outcomes (RELIABILITY.md step 5): 250 → ``sent``; 4xx or a connection lost before the
final dot → ``deferred`` with exponential backoff, ``failed`` after ``max_attempts``;
5xx → ``failed``, and 5.1.x (bad mailbox) also suppresses the contact as hard-bounced;
connection lost after the dot → ``unknown``, never retried. A relay that cannot be
reached at all is not the recipients' fault: the rows go back untouched and the batch
comes back later (relay backoff), so a relay down for minutes does not burn attempts.

Commit policy, and the trade-off with "commit each outcome at once": outcomes are
committed in groups of at most ``outcome_batch`` messages, and never later than
``outcome_max_delay`` seconds after the relay's answer (nor before any wait, a relay
slow to answer the next dot included: :func:`campaigns.smtp.while_awaiting_reply`). One
commit per message costs a round trip and a disk flush per message, which alone would cap a
worker at a few hundred messages a second on PostgreSQL; a group commit costs the same
for twenty. What a crash can cost is bounded by the *in-flight window*: before a group of
rows may reach the relay they are flagged ``possible_duplicate`` in a committed
transaction (:func:`campaigns.outcomes.mark_in_flight`), and their outcome commit puts
the flag back. A SIGKILL therefore re-sends at most ``outcome_batch`` messages per
worker thread, and exactly those rows are listed as possible duplicates; rows claimed
but not yet in a window are re-sent without a flag because they provably never left.
With ``outcome_batch=1`` this is the strict "one commit per message" policy.

Queue shape (fairness): a campaign starts ``lanes`` batch messages; when a batch has
finished its range it sends the next range of its lane (``lanes × batch_size`` further),
and after ``slice_seconds`` it yields by re-queueing its own range. At the end of the ids
a lane wraps round to rows whose retry is due, or comes back when the next retry is due.
So a campaign has a handful of messages in the queue at any time, and two bodies sending
at once are interleaved rather than served one after the other.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns import claims, dbclock, outcomes, sending
from campaigns.claims import Claimed
from campaigns.links import RecipientLinks, StoredLink
from campaigns.mailer import transport_for
from campaigns.message import HeaderValueError, MessageTemplate, delivery_message_id, ics_attachment
from campaigns.models import Campaign, CampaignLink, CampaignStatus, DeliveryStatus
from campaigns.outcomes import Outcome
from campaigns.personalise import compile_html, compile_text, subscription_reason
from campaigns.ratelimit import RateLimiter, process_limiter, quota_wait_seconds
from campaigns.smtp import Outcome as SmtpOutcome
from campaigns.smtp import SendResult, Stage, Transport, while_awaiting_reply
from contacts.db import db
from contacts.models import MailingList, Organisation

log = logging.getLogger(__name__)
S = CampaignStatus
D = DeliveryStatus


@dataclass(frozen=True)
class SendSettings:
    """Everything the engine needs from the configuration, passed in by the edges."""

    smtp_url: str = ""
    public_url: str = "http://127.0.0.1:5000"
    secret: str = "dev"
    connections: int = 4
    rate: float | None = None  # messages per second per process (CRIEUR_SEND_RATE)
    batch_size: int = 500  # ids per batch message
    lanes: int = 8  # batch messages per campaign in the queue at once
    claim_size: int = 100  # most rows claimed at once
    first_claim: int = 25
    claim_seconds: float = 2.0  # aim: a claim lasts about this long
    lease_seconds: float = 900.0  # > the 10 min a relay may take to answer the dot
    outcome_batch: int = 20  # in-flight window and group commit size
    outcome_max_delay: float = 0.25
    max_attempts: int = 8
    backoff_base: float = 60.0
    backoff_max: float = 3600.0
    relay_backoff_base: float = 2.0
    relay_backoff_max: float = 60.0
    slice_seconds: float = 20.0
    recheck_seconds: float = 1.0
    unsubscribe_mailto: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SendSettings:
        """From ``app.config`` (``CRIEUR_*``; the ``CRIEUR_SEND_*`` tuning keys are optional)."""
        names = {
            "batch_size": "CRIEUR_SEND_BATCH_SIZE",
            "lanes": "CRIEUR_SEND_LANES",
            "claim_size": "CRIEUR_SEND_CLAIM_SIZE",
            "lease_seconds": "CRIEUR_SEND_LEASE_SECONDS",
            "outcome_batch": "CRIEUR_SEND_OUTCOME_BATCH",
            "max_attempts": "CRIEUR_SEND_MAX_ATTEMPTS",
            "backoff_base": "CRIEUR_SEND_BACKOFF_SECONDS",
            "backoff_max": "CRIEUR_SEND_BACKOFF_MAX_SECONDS",
            "relay_backoff_base": "CRIEUR_SEND_RELAY_BACKOFF_SECONDS",
            "slice_seconds": "CRIEUR_SEND_SLICE_SECONDS",
        }
        extra = {attr: config[key] for attr, key in names.items() if config.get(key) is not None}
        return cls(
            smtp_url=config.get("CRIEUR_SMTP_URL") or "",
            public_url=config.get("CRIEUR_PUBLIC_URL") or "http://127.0.0.1:5000",
            secret=config.get("CRIEUR_SECRET_KEY") or config.get("SECRET_KEY") or "dev",
            connections=int(config.get("CRIEUR_SMTP_CONNECTIONS") or 4),
            rate=config.get("CRIEUR_SEND_RATE") or None,
            **extra,
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts`` (1, 2, …): exponential, ±25 % jitter."""
        base = min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_max)
        return base * random.uniform(0.75, 1.25)


# ------------------------------------------------------------------------ message context


class MessageContext:
    """A campaign's messages, pre-built once per process; :meth:`render` per recipient."""

    def __init__(self, campaign: Campaign, org: Organisation, settings: SendSettings) -> None:
        from campaigns.editing import custom_fields_for, invitation_ics

        list_ids = [i for i in (campaign.list_ids or []) if isinstance(i, int)]
        self.fields = custom_fields_for(org.id, list_ids)
        self.html = compile_html(campaign.compiled_html or "", self.fields)
        self.text = compile_text(campaign.compiled_text or campaign.subject, self.fields)
        subject = compile_text(campaign.subject or "", self.fields)
        self.subject = subject if subject.names else None
        rows = db.session.scalars(
            db.select(CampaignLink)
            .where(
                CampaignLink.organisation_id == org.id,
                CampaignLink.campaign_id == campaign.id,
            )
            .order_by(CampaignLink.id)
        ).all()
        needed = self.html.names | self.text.names
        self.links = RecipientLinks(
            public_url=settings.public_url,
            secret=settings.secret,
            policy=org.tracking_policy,
            org_id=org.id,
            campaign_id=campaign.id,
            campaign_uuid=campaign.uuid,
            campaign_name=campaign.name,
            website_url=org.website_url,
            links=[StoredLink(n, row.id, row.url) for n, row in enumerate(rows, 1)],
            needed=needed,
        )
        self.list_names = dict(
            db.session.execute(
                db.select(MailingList.id, MailingList.name).where(
                    MailingList.organisation_id == org.id
                )
            ).all()
        )
        first_list = next((i for i in list_ids if i in self.list_names), None)
        dkim = None
        if org.dkim_selector and org.dkim_private_key:
            from campaigns.dkim import DkimSigner

            dkim = DkimSigner(org.mail_domain, org.dkim_selector, org.dkim_private_key)
        ics = invitation_ics(org, campaign)
        self.envelope_from = org.from_address
        self.org_domain = org.mail_domain
        self.campaign_uuid = campaign.uuid
        self.mailto = (org.reply_to or org.from_address) if settings.unsubscribe_mailto else ""
        self.template = MessageTemplate(
            sender_email=org.from_address,
            sender_name=org.from_name or org.name,
            subject=campaign.subject,
            org_domain=org.mail_domain,
            reply_to=org.reply_to or None,
            list_id=f"liste-{first_list or 0}.{org.slug}.{org.mail_domain}",
            list_name=self.list_names.get(first_list, "") if first_list else "",
            feedback_id=f"c{campaign.id}:o{org.id}:{campaign.kind}:crieur",
            attachment=ics_attachment(ics) if ics else None,
            dkim=dkim,
        )

    def message_id(self, delivery_id: int) -> str:
        return delivery_message_id(delivery_id, self.campaign_uuid, self.org_domain)

    def render(self, row: Claimed) -> bytes:
        """The message for one claimed row (raises HeaderValueError for an unusable address)."""
        values: dict[str, Any] = dict(row.fields or {})
        values.update(
            first_name=row.first_name,
            last_name=row.last_name,
            email=row.email,
            list_name=self.list_names.get(row.list_id, ""),
            subscription_reason=subscription_reason(row.source, row.legal_basis or "consent"),
        )
        values.update(self.links.values(row.id, row.contact_id, row.list_id, row.tracking_consent))
        unsubscribe = values["unsubscribe_url"]
        mailto = None
        if self.mailto:
            token = unsubscribe.rsplit("/", 1)[-1]
            mailto = f"mailto:{self.mailto}?subject=unsubscribe-{token}"
        return self.template.render(
            row.email,
            f"{row.first_name} {row.last_name}".strip(),
            self.message_id(row.id),
            self.html.render(values),
            self.text.render(values),
            unsubscribe,
            mailto,
            subject=self.subject.render(values) if self.subject else None,
        )


_contexts: OrderedDict[tuple, MessageContext] = OrderedDict()
_contexts_lock = threading.Lock()
_CONTEXT_CACHE = 16


def _context_key(campaign: Campaign, org: Organisation, settings: SendSettings) -> tuple:
    return (
        campaign.id,
        campaign.version,
        campaign.compiled_version,
        campaign.subject,
        tuple(campaign.list_ids or []),
        org.from_address,
        org.from_name,
        org.name,
        org.reply_to,
        org.tracking_policy,
        org.website_url,
        org.dkim_selector,
        hash(org.dkim_private_key),
        settings.public_url,
        hash(settings.secret),
        settings.unsubscribe_mailto,
    )


def message_context(
    campaign: Campaign, org: Organisation, settings: SendSettings
) -> MessageContext:
    """The cached :class:`MessageContext` of this campaign version and body settings."""
    key = _context_key(campaign, org, settings)
    with _contexts_lock:
        found = _contexts.get(key)
        if found is not None:
            _contexts.move_to_end(key)
            return found
    built = MessageContext(campaign, org, settings)
    with _contexts_lock:
        _contexts[key] = built
        while len(_contexts) > _CONTEXT_CACHE:
            _contexts.popitem(last=False)
    return built


# ---------------------------------------------------------------------------- outcomes


class OutcomeWriter:
    """Collects outcomes and commits them in groups, with the next in-flight window."""

    def __init__(self, org_id: int, settings: SendSettings) -> None:
        self.org_id = org_id
        self.settings = settings
        self.pending: list[Outcome] = []
        self.bounced: list[str] = []
        self.first_at = 0.0
        self.counts: dict[str, int] = {}

    def add(self, outcome: Outcome, bounced_email: str | None = None) -> None:
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.append(outcome)
        if bounced_email:
            self.bounced.append(bounced_email)

    def overdue(self) -> bool:
        return bool(self.pending) and (
            len(self.pending) >= self.settings.outcome_batch
            or time.monotonic() - self.first_at >= self.settings.outcome_max_delay
        )

    def flush(self, mark: Sequence[int] = ()) -> None:
        """Commit the pending outcomes (and flag ``mark`` in flight) in one transaction."""
        if not self.pending and not mark:
            return
        outcomes.write_outcomes(self.pending)
        for email in self.bounced:
            from contacts.suppression import suppress

            suppress(self.org_id, email, "bounced", self.settings.secret)
        outcomes.mark_in_flight(mark)
        db.session.commit()
        for o in self.pending:
            self.counts[o.status] = self.counts.get(o.status, 0) + 1
        self.pending = []
        self.bounced = []


def classify(row: Claimed, result: SendResult, message_id: str, settings: SendSettings):
    """``(Outcome, email to suppress or None)`` for the relay's answer to one message."""
    detail = " ".join(str(x) for x in (result.code, result.message) if x)[:1000]
    keep = row.was_duplicate
    if result.outcome is SmtpOutcome.SENT:
        return Outcome(row.id, D.SENT, keep, "", message_id=message_id), None
    if result.outcome is SmtpOutcome.UNKNOWN:
        error = f"connexion perdue après l'envoi, réception incertaine : {detail}"
        return Outcome(row.id, D.UNKNOWN, keep, error, message_id=message_id), None
    if result.outcome is SmtpOutcome.FAILED:
        bounce = row.email if result.bad_mailbox else None
        return Outcome(row.id, D.FAILED, keep, detail, message_id=message_id), bounce
    if row.attempts >= settings.max_attempts:
        error = f"abandon après {row.attempts} tentatives : {detail}"
        return Outcome(row.id, D.FAILED, keep, error, message_id=message_id), None
    delay = settings.backoff(row.attempts)
    return Outcome(row.id, D.DEFERRED, keep, detail, delay, message_id), None


# ------------------------------------------------------------------------- relay health

_relay_failures: dict[str, int] = {}
_relay_lock = threading.Lock()


def _relay_down(key: str, settings: SendSettings) -> float:
    with _relay_lock:
        n = _relay_failures[key] = _relay_failures.get(key, 0) + 1
    return min(settings.relay_backoff_base * 2 ** (n - 1), settings.relay_backoff_max)


def _relay_ok(key: str) -> None:
    if key in _relay_failures:
        with _relay_lock:
            _relay_failures.pop(key, None)


# ------------------------------------------------------------------------------ batches


@dataclass
class BatchResult:
    """What one :func:`send_batch` did, and what the actor should enqueue next."""

    campaign_id: int
    lo_id: int
    hi_id: int
    claimed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    next: tuple[int, int] | None = None
    delay: float | None = None  # seconds before ``next`` should run
    stopped: bool = False  # the worker is shutting down
    reason: str = ""  # why the batch ended early: paused, cancelled, relay_down, quota…
    finished: bool = False  # the campaign is now ``sent``

    @property
    def sent(self) -> int:
        return self.counts.get(D.SENT, 0)


class _EndChunk(Exception):  # noqa: N818 - control flow inside one claim
    def __init__(self, reason: str, delay: float | None = None) -> None:
        self.reason, self.delay = reason, delay


def send_batch(
    campaign_id: int,
    lo_id: int,
    hi_id: int,
    settings: SendSettings,
    *,
    should_stop: Callable[[], bool] | None = None,
    transport: Transport | None = None,
    limiter: RateLimiter | None = None,
) -> BatchResult:
    """Send the due rows of ``[lo_id, hi_id]``; safe to run twice or concurrently.

    Commits as it goes (claims, outcome groups). Returns what to enqueue next; the
    caller (the actor) does the enqueueing, so this module never imports actors.
    """
    stop = should_stop or (lambda: False)
    result = BatchResult(campaign_id, lo_id, hi_id)
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != S.SENDING:
        result.reason = "not_sending"
        return result
    org = db.session.get(Organisation, campaign.organisation_id)
    repermission = bool(campaign.is_repermission)
    ctx = message_context(campaign, org, settings)
    relay_key = org.smtp_url or settings.smtp_url or "outbox"
    transport = transport or transport_for(org, settings.smtp_url, settings.connections)
    limiter = limiter or process_limiter(settings.rate)
    writer = OutcomeWriter(org.id, settings)
    started = time.monotonic()
    chunk = max(min(settings.first_claim, settings.claim_size), 1)
    exhausted = False
    try:
        while True:
            if stop():
                result.next, result.stopped, result.reason = (lo_id, hi_id), True, "stopping"
                break
            if time.monotonic() - started > settings.slice_seconds:
                result.next, result.reason = (lo_id, hi_id), "time_slice"
                break
            claim = claims.claim_rows(
                org.id,
                campaign_id,
                lo_id,
                hi_id,
                chunk,
                settings.lease_seconds,
                org.hourly_limit,
                repermission=repermission,
            )
            if claim.quota_blocked:
                wait = quota_wait_seconds(org.id, org.hourly_limit, dbclock.db_now())
                result.next, result.delay, result.reason = (lo_id, hi_id), wait, "quota"
                break
            if not claim.rows:
                exhausted = True
                break
            result.claimed += len(claim.rows)
            t0 = time.monotonic()
            try:
                # A slow reply to a dot must not hold the outcomes before it (RELIABILITY.md 5).
                with while_awaiting_reply(writer.flush, settings.outcome_max_delay):
                    _send_rows(
                        ctx,
                        campaign_id,
                        claim.rows,
                        transport,
                        limiter,
                        writer,
                        stop,
                        settings,
                        repermission=repermission,
                    )
                _relay_ok(relay_key)
            except _EndChunk as end:
                result.reason = end.reason
                if end.reason == "relay_down":
                    result.next, result.delay = (lo_id, hi_id), _relay_down(relay_key, settings)
                elif end.reason == "stopping":
                    result.next, result.stopped = (lo_id, hi_id), True
                break
            spent = max(time.monotonic() - t0, 1e-3)
            per_second = len(claim.rows) / spent
            chunk = int(min(max(per_second * settings.claim_seconds, 1), settings.claim_size))
    finally:
        writer.flush()
        db.session.commit()
    result.counts = writer.counts
    if exhausted:
        if result.claimed == 0 and claims.range_is_busy(campaign_id, lo_id, hi_id):
            result.reason = "range_taken"  # a duplicate message: another lane has it
        else:
            result.next, result.delay = _next_range(campaign_id, lo_id, hi_id, settings)
            result.reason = result.reason or ("next_range" if result.next else "done")
    if result.next is None:
        result.finished = sending.finish_if_done(campaign_id)
        db.session.commit()
    return result


def _next_range(
    campaign_id: int, lo_id: int, hi_id: int, settings: SendSettings
) -> tuple[tuple[int, int] | None, float | None]:
    """Where this lane goes after finishing ``[lo_id, hi_id]`` (see the module docstring)."""
    size = hi_id - lo_id + 1
    ahead = claims.first_claimable_id(campaign_id, lo_id + settings.lanes * size)
    if ahead is not None:
        return (ahead, ahead + size - 1), None
    due = claims.first_claimable_id(campaign_id, 0)
    if due is not None:
        return (due, due + size - 1), None
    retry = claims.next_retry_in(campaign_id)
    if retry is not None:
        row_id, seconds = retry
        return (row_id, row_id + size - 1), seconds + 0.5
    return None, None


def _send_rows(
    ctx: MessageContext,
    campaign_id: int,
    rows: list[Claimed],
    transport: Transport,
    limiter: RateLimiter,
    writer: OutcomeWriter,
    stop: Callable[[], bool],
    settings: SendSettings,
    *,
    repermission: bool = False,
) -> None:
    """Send claimed rows in order; raises :class:`_EndChunk` to end early (rows released).

    A re-permission campaign's rows are re-checked for "still awaiting confirmation": a
    person who confirmed since the freeze is skipped rather than asked again.
    """
    window = settings.outcome_batch
    if settings.rate:
        window = max(1, min(window, math.ceil(settings.rate * settings.outcome_max_delay)))
    window_end = 0
    sendable = {r.id for r in rows if r.sendable}
    last_check = time.monotonic()
    renew_at = last_check + settings.lease_seconds / 2
    i = 0
    try:
        while i < len(rows):
            row = rows[i]
            now = time.monotonic()
            if now - last_check >= settings.recheck_seconds:
                writer.flush()
                status = claims.campaign_status(campaign_id)
                if status != S.SENDING:
                    raise _EndChunk("cancelled" if status == S.CANCELLED else "paused")
                sendable &= claims.still_sendable(
                    [r.id for r in rows[i:]], repermission=repermission
                )
                db.session.commit()
                last_check = now
            if now >= renew_at:
                writer.flush()
                claims.renew_leases([r.id for r in rows[i:]], settings.lease_seconds)
                db.session.commit()
                renew_at = now + settings.lease_seconds / 2
            if stop():
                raise _EndChunk("stopping")
            if row.id not in sendable:
                reason = _skip_reason(row, repermission)
                writer.add(Outcome(row.id, D.SKIPPED, row.was_duplicate, reason))
                i += 1
                continue
            if i >= window_end:
                window_end = i + window
                writer.flush(mark=[r.id for r in rows[i:window_end] if r.id in sendable])
            wait = limiter.reserve()
            if wait > 0:
                if wait > 0.02:
                    writer.flush()
                if not _sleep(wait, stop):
                    raise _EndChunk("stopping")
            message_id = ctx.message_id(row.id)
            try:
                raw = ctx.render(row)
            except HeaderValueError as exc:
                writer.add(
                    Outcome(row.id, D.FAILED, row.was_duplicate, f"adresse inutilisable : {exc}")
                )
                i += 1
                continue
            res = transport.send(ctx.envelope_from, [row.email], raw)
            if res.outcome is SmtpOutcome.DEFERRED and res.stage is Stage.CONNECT:
                raise _EndChunk("relay_down")
            outcome, bounce = classify(row, res, message_id, settings)
            writer.add(outcome, bounce)
            i += 1
            if writer.overdue() and i < window_end:
                writer.flush()
    except _EndChunk as end:
        release = D.CANCELLED if end.reason == "cancelled" else "release"
        error = "campagne annulée" if end.reason == "cancelled" else ""
        for row in rows[i:]:
            writer.add(Outcome(row.id, release, row.was_duplicate, error))
        writer.flush()
        raise


def _sleep(seconds: float, stop: Callable[[], bool]) -> bool:
    while seconds > 0:
        if stop():
            return False
        step = min(seconds, 0.2)
        time.sleep(step)
        seconds -= step
    return True


def _skip_reason(row: Claimed, repermission: bool = False) -> str:
    if row.contact_status and row.contact_status != "active":
        return f"contact {row.contact_status} depuis le lancement"
    if repermission:
        return "a confirmé son inscription ou s'est désinscrit·e depuis le lancement"
    return "n'est plus inscrit·e à la liste depuis le lancement"
