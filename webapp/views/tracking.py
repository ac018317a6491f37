"""Public tracking endpoints: open pixel, click redirect, RSVP and poll pages, site counter.

Every URL carries a token signed for one purpose (``analytics.tokens``); the payloads are
defined by ``campaigns/links.py``, which builds the links:

==================== ============================== ======================================
``/t/o/<t>.gif``     open pixel                     ``open``: campaign_id, ref, key
``/t/c/<t>``         click redirect                 ``click``: campaign_id, ref, key, link_id
``/t/r/<t>``         RSVP page                      ``rsvp``: campaign_id, delivery_id, answer
``/t/p/<t>``         poll page                      ``poll``: campaign_id, delivery_id, N
``/s/<key>.js``      website counter script         the body's ``site_key``
``/s/<key>/hit``     its beacon (POST, or GET)      form fields of ``analytics.snippet``
``/s/<key>/p.gif``   its no-script pixel            the page URL in the Referer
==================== ============================== ======================================

The website counter lives under ``/s/`` (the paths ``analytics.snippet`` writes into the
snippet bodies paste on their sites), registered on the app by this blueprint.

Answers before writing: the pixel and the redirect verify the token (no database for the
pixel; a cached lookup for the redirect), queue a hit in the app's
:class:`analytics.buffer.EventBuffer` and answer; the buffer writes batches in the
background (``analytics.tracking.store_hits``, ``analytics.site.store_site_hits``).

Refusals: a token that does not verify, or names a link that is not one of that
campaign's stored links, is answered 404, never a redirect; query parameters such as
``?url=`` are never read. The redirect goes only to the URL stored in ``CampaignLink``
(with the campaign's ``utm_*`` when it points at the body's own site).

RSVP and poll: link scanners follow every link of a message, so a GET never records an
answer. It shows the page with the choice of the link pre-selected and a confirm button
(a POST to the same URL); the POST records it, and the page then lets the person change
it until the deadline. These POSTs are exempt from the CSRF token: the signed URL is the
credential (as for one-click unsubscribe), and the pages set no cookie.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    make_response,
    render_template,
    request,
)
from sqlalchemy.exc import IntegrityError

from analytics import answers as answers_service
from analytics.buffer import EventBuffer
from analytics.dashboard import ReportCache
from analytics.machine import ClickMemory
from analytics.models import EventKind
from analytics.sanitize import clean_site_key
from analytics.site import (
    SiteCache,
    SiteHitItem,
    daily_salt,
    make_site_hit,
    privacy_signal,
    store_site_hits,
)
from analytics.snippet import hit_from_beacon, hit_from_pixel, site_script
from analytics.tokens import BadToken, TokenPurpose, verify
from analytics.tracking import Hit, LinkCache, recipient_key, store_hits
from contacts.db import DomainError, db
from contacts.models import Organisation, TrackingPolicy
from webapp.extensions import csrf, limiter
from webapp.i18n import error_text

bp = Blueprint("tracking", __name__, url_prefix="/t")
log = logging.getLogger(__name__)

# The smallest transparent GIF (43 bytes).
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0, private"
MAX_KEY_CHARS = 32
MAX_BEACON_BYTES = 4096
STATE_KEY = "crieur.tracking"


# ---------------------------------------------------------------------------- state


class TrackingState:
    """Per-app, per-process: the write buffer and the caches of the public endpoints."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.links = LinkCache()
        self.sites = SiteCache()
        self.clicks = ClickMemory()
        # Aggregates of the Statistiques pages and the stats API (analytics.dashboard).
        self.reports = ReportCache(
            ttl=float(app.config.get("CRIEUR_ANALYTICS_CACHE_SECONDS", 30)),
            refresher=self._refresh_report,
        )
        self._refresh_pool: ThreadPoolExecutor | None = None
        self.skipped = 0  # items dropped because their rows broke a constraint
        self.buffer = EventBuffer(
            self._write,
            max_items=int(app.config.get("CRIEUR_TRACKING_BUFFER_MAX", 20_000)),
            batch_size=int(app.config.get("CRIEUR_TRACKING_BATCH", 500)),
            interval=float(app.config.get("CRIEUR_TRACKING_FLUSH_SECONDS", 0.5)),
            name="tracking-buffer",
        )

    def _write(self, items: list[Any]) -> None:
        with self.app.app_context():
            try:
                self._write_batch(items)
            except IntegrityError:
                # One row broke a constraint (a link deleted meanwhile…): write the others
                # one by one rather than retrying the whole batch for ever.
                for item in items:
                    try:
                        self._write_batch([item])
                    except IntegrityError:
                        self.skipped += 1
                        log.warning("tracking: dropped one %s that the database refused",
                                    type(item).__name__)  # fmt: skip

    def _refresh_report(self, job: Callable[[Any], None]) -> None:
        """Run a report refresh in the background, with its own connection (one at a time)."""
        if self._refresh_pool is None:
            self._refresh_pool = ThreadPoolExecutor(1, thread_name_prefix="report-refresh")

        def run() -> None:
            with self.app.app_context(), db.engine.connect() as conn:
                job(conn)

        def report(future: Any) -> None:
            if future.exception() is not None:
                log.error("report refresh failed", exc_info=future.exception())

        self._refresh_pool.submit(run).add_done_callback(report)

    def _write_batch(self, items: list[Any]) -> None:
        hits = [i for i in items if isinstance(i, Hit)]
        site_hits = [i for i in items if isinstance(i, SiteHitItem)]
        with db.engine.begin() as conn:
            if hits:
                store_hits(conn, hits)
            if site_hits:
                store_site_hits(conn, site_hits)


def _init_state(app: Flask) -> None:
    app.extensions[STATE_KEY] = TrackingState(app)


def state(app: Flask | None = None) -> TrackingState:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(STATE_KEY)
    if found is None:
        found = app.extensions[STATE_KEY] = TrackingState(app)
    return found


def enqueue(item: Hit | SiteHitItem) -> None:
    """Queue an event for writing (other public pages, e.g. the web version, use this)."""
    state().buffer.put(item)


def flush_events(app: Flask | None = None) -> int:
    """Write every queued event now (tests, and the CLI before a report)."""
    return state(app).buffer.flush()


def flush_quietly() -> None:
    """Before a report: write what this process still holds (a fraction of a second of
    events), but never fail the report because a write is failing right now."""
    try:
        flush_events()
    except Exception:
        log.exception("tracking buffer flush before a report failed")


# ---------------------------------------------------------------------------- helpers


_GIF_HEADERS = (
    ("Content-Type", "image/gif"),
    ("Cache-Control", NO_STORE),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
)


def _gif(status: int = 200) -> Response:
    return Response(GIF, status=status, headers=_GIF_HEADERS)


def _not_found() -> Response:
    response = make_response(render_template("tracking/not_found.html"), 404)
    response.headers["Cache-Control"] = NO_STORE
    return response


def _secret() -> str:
    return current_app.config["CRIEUR_SECRET_KEY"]


def _ids(values: tuple[int | str, ...], shape: str) -> tuple[Any, ...] | None:
    """Check a token payload against a shape: ``i`` positive int, ``z`` int >= 0, ``s`` str."""
    if len(values) != len(shape):
        return None
    for value, kind in zip(values, shape, strict=True):
        if kind == "s":
            if not isinstance(value, str) or len(value) > MAX_KEY_CHARS:
                return None
        elif not isinstance(value, int) or value < (1 if kind == "i" else 0):
            return None
    return values


def _read(purpose: str, token: str, shape: str) -> tuple[Any, ...] | None:
    try:
        return _ids(verify(_secret(), purpose, token), shape)
    except BadToken:
        return None


def _user_agent() -> str:
    return request.headers.get("User-Agent", "")


# ---------------------------------------------------------------------------- e-mail events


@bp.route("/o/<token>.gif", methods=["GET"])
def pixel(token: str):
    """The open pixel: always the same GIF, never cached; a forged token gets a 404."""
    values = _read(TokenPurpose.OPEN, token, "izs")
    if values is None:
        return _gif(404)
    campaign_id, ref, key = values
    enqueue(
        Hit(
            kind=EventKind.OPEN,
            campaign_id=campaign_id,
            delivery_id=ref or None,
            recipient_key=key,
            method=request.method,
            user_agent=_user_agent(),
        )
    )
    return _gif()


@bp.route("/c/<token>", methods=["GET"])
def click(token: str):
    """The click redirect: 302 to the stored URL of that campaign's link, else 404."""
    values = _read(TokenPurpose.CLICK, token, "izsi")
    if values is None:
        return _not_found()
    campaign_id, ref, key, link_id = values
    tracking = state()
    target = tracking.links.get(db.session, campaign_id, link_id)
    if target is None:
        return _not_found()
    recent = tracking.clicks.record(f"{campaign_id}:{key}", link_id)
    enqueue(
        Hit(
            kind=EventKind.CLICK,
            campaign_id=campaign_id,
            org_id=target.org_id,
            delivery_id=ref or None,
            recipient_key=key,
            link_id=link_id,
            method=request.method,
            user_agent=_user_agent(),
            recent=recent,
            link_count=target.link_count,
        )
    )
    # A bare 302 (no HTML body): mail clients and browsers only read the Location.
    return Response(
        status=302,
        headers=(
            ("Location", target.url),
            ("Cache-Control", NO_STORE),
            ("Referrer-Policy", "no-referrer"),
        ),
    )


def _policy(org_id: int) -> str:
    org = db.session.get(Organisation, org_id)
    return org.tracking_policy if org else TrackingPolicy.OFF


def _answer_hit(kind: str, campaign_id: int, delivery_id: int, value: str) -> Hit:
    return Hit(
        kind=kind,
        campaign_id=campaign_id,
        delivery_id=delivery_id,
        recipient_key=recipient_key(_secret(), campaign_id, delivery_id),
        method=request.method,
        user_agent=_user_agent(),
        value=value,
    )


def _answer_page(template: str, ctx: Any, status: int = 200, **values: Any) -> Response:
    org = db.session.get(Organisation, ctx.org_id)
    response = make_response(
        render_template(
            template,
            ctx=ctx,
            org=org,
            attendees_visible=answers_service.attendees_visible(org.tracking_policy if org else ""),
            labels=answers_service.RSVP_LABELS,
            **values,
        ),
        status,
    )
    response.headers["Cache-Control"] = NO_STORE
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.route("/r/<token>", methods=["GET", "POST"])
@csrf.exempt
def rsvp(token: str):
    """RSVP: GET shows the answer pre-selected with a confirm button; POST records it."""
    values = _read(TokenPurpose.RSVP, token, "iis")
    if values is None or values[2] not in answers_service.RSVP_CHOICES:
        return _not_found()
    campaign_id, delivery_id, chosen = values
    if request.method != "POST":  # GET and HEAD (scanners) never answer
        ctx = answers_service.load_context(campaign_id, delivery_id)
        if ctx is None or ctx.event is None:
            return _not_found()
        return _answer_page("tracking/rsvp.html", ctx, selected=ctx.rsvp or chosen, saved=False)
    answer = request.form.get("answer", chosen)
    try:
        ctx = answers_service.set_rsvp(campaign_id, delivery_id, answer)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        ctx = answers_service.load_context(campaign_id, delivery_id)
        if ctx is None or ctx.event is None or exc.status == 404:
            return _not_found()
        return _answer_page(
            "tracking/rsvp.html",
            ctx,
            exc.status,
            selected=ctx.rsvp or chosen,
            saved=False,
            error=error_text(exc),
        )
    enqueue(_answer_hit(EventKind.RSVP, campaign_id, delivery_id, answer))
    return _answer_page("tracking/rsvp.html", ctx, selected=ctx.rsvp, saved=True)


@bp.route("/p/<token>", methods=["GET", "POST"])
@csrf.exempt
def poll(token: str):
    """Poll: GET shows the option pre-selected with a confirm button; POST records it."""
    values = _read(TokenPurpose.POLL, token, "iii")
    if values is None:
        return _not_found()
    campaign_id, delivery_id, option = values
    ctx = answers_service.load_context(campaign_id, delivery_id)
    block = answers_service.poll_block(ctx.campaign) if ctx else None
    options = list(block.get("options") or ()) if block else []
    if ctx is None or not options or option > len(options):
        return _not_found()
    question = str(block.get("question") or "") if block else ""
    current = options.index(ctx.poll) + 1 if ctx.poll in options else None
    if request.method != "POST":  # GET and HEAD (scanners) never answer
        return _answer_page(
            "tracking/poll.html",
            ctx,
            question=question,
            options=options,
            selected=current or option,
            saved=False,
        )
    try:
        chosen = int(request.form.get("option", option))
    except (TypeError, ValueError):
        chosen = 0
    try:
        ctx = answers_service.set_poll(campaign_id, delivery_id, chosen)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _answer_page(
            "tracking/poll.html",
            ctx,
            exc.status,
            question=question,
            options=options,
            selected=current or option,
            saved=False,
            error=error_text(exc),
        )
    enqueue(_answer_hit(EventKind.POLL, campaign_id, delivery_id, ctx.poll or ""))
    return _answer_page(
        "tracking/poll.html", ctx, question=question, options=options, selected=chosen, saved=True
    )


# ---------------------------------------------------------------------------- website counter


def _site_org(site_key: str) -> int | None:
    key = clean_site_key(site_key)
    if key is None:
        return None
    return state().sites.org_for_key(db.session, key)


def _public_url() -> str:
    return current_app.config["CRIEUR_PUBLIC_URL"]


def site_js(site_key: str):
    """The counter script a body's pages load (cacheable for an hour)."""
    if _site_org(site_key) is None:
        return make_response("", 404)  # no error page: it would set a cookie on their site
    response = make_response(site_script(_public_url(), site_key))
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "86400"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Cache-Control"] = NO_STORE
    return response


def _beacon_fields() -> dict[str, list[str]] | None:
    if request.method != "POST":
        raw = request.query_string[: MAX_BEACON_BYTES + 1]
    else:
        length = request.content_length
        if length is not None and length > MAX_BEACON_BYTES:
            return None
        raw = request.stream.read(MAX_BEACON_BYTES + 1)
    if len(raw) > MAX_BEACON_BYTES:
        return None
    try:
        return parse_qs(raw.decode("utf-8", "replace"), max_num_fields=20)
    except ValueError:
        return None


def _count(org_id: int, site_key: str, data: Any) -> None:
    salt = daily_salt(db.engine)
    enqueue(
        make_site_hit(
            org_id,
            site_key,
            data,
            _user_agent(),
            request.remote_addr or "",  # hashed with the salt, never stored
            salt,
            time.time(),
        )
    )


def _too_many(_limit: Any) -> Response:
    return _cors(make_response("", 429))


@bp.errorhandler(429)
def _throttled(exc: Any) -> Response:
    """A bare 429: the site's error page would start a session (a cookie) for visitors of
    the body's website."""
    response = getattr(exc, "response", None)
    return response if isinstance(response, Response) else _too_many(None)


@limiter.limit("600 per minute", on_breach=_too_many)
def site_hit(site_key: str):
    """The script's beacon: 204 whatever happens, except 4xx for junk; no cookie."""
    if request.method == "OPTIONS":
        return _cors(make_response("", 204))
    org_id = _site_org(site_key)
    if org_id is None:
        return _cors(make_response("", 404))
    fields = _beacon_fields()
    if fields is None:
        return _cors(make_response("", 413 if request.method == "POST" else 400))
    data = hit_from_beacon(fields)
    if data is None:
        return _cors(make_response("", 400))
    if request.method != "HEAD" and not privacy_signal(request.headers):
        _count(org_id, site_key, data)
    if request.method != "POST":  # the image fallback of the script (GET, HEAD)
        return _cors(_gif())
    return _cors(make_response("", 204))


@limiter.limit("600 per minute", on_breach=_too_many)
def site_pixel(site_key: str):
    """The no-script pixel: the page is its Referer; always the GIF."""
    org_id = _site_org(site_key)
    if org_id is None:
        return _gif(404)
    data = hit_from_pixel(request.headers.get("Referer"))
    if data is not None and request.method != "HEAD" and not privacy_signal(request.headers):
        _count(org_id, site_key, data)
    return _gif()


def _register_site_routes(setup_state: Any) -> None:
    app: Flask = setup_state.app
    _init_state(app)
    exempt_hit = csrf.exempt(site_hit)
    app.add_url_rule("/s/<site_key>.js", "tracking.site_script", site_js, methods=["GET"])
    app.add_url_rule(
        "/s/<site_key>/hit", "tracking.site_hit", exempt_hit, methods=["POST", "GET", "OPTIONS"]
    )
    app.add_url_rule("/s/<site_key>/p.gif", "tracking.site_pixel", site_pixel, methods=["GET"])
    if app.config.get("CRIEUR_BENCH_ROUTES"):
        app.add_url_rule("/t/bench/gif", "tracking.bench_gif", bench_gif, methods=["GET"])


def bench_gif():
    """The trivial route the tracking bench compares against (CRIEUR_BENCH_ROUTES=1 only)."""
    return _gif()


bp.record_once(_register_site_routes)
