"""Per-recipient link values: the URLs substituted for the placeholders of a sent message.

The sender builds one :class:`RecipientLinks` per campaign (with the body's tracking policy)
and asks it, per delivery, for the values of the placeholders the compiled parts contain
(:mod:`campaigns.personalise`). Every public URL is ``CRIEUR_PUBLIC_URL`` + a path holding a
token signed by :mod:`analytics.tokens` for one purpose; the endpoints that answer them
belong to the web layer and must verify the token with the same purpose and read the
payload below. A token that fails to verify is answered 4xx, never redirected.

URL shapes and token payloads (``sign(secret, purpose, *values)``)
----------------------------------------------------------------------
``ref`` is the delivery id (int) when the body's policy is ``per_contact`` *and* the
subscription has ``tracking_consent``; otherwise ``0`` (the event names nobody).
``key`` is a random string of 10 base-36 characters drawn for each rendered message and
stored nowhere by the sender: it is ``TrackingEvent.recipient_key``, which lets aggregates
count unique opens and clicks of one copy without being able to say whose copy it was.

=================== ================================ ===========================================
placeholder         URL                              purpose and values
=================== ================================ ===========================================
``open_pixel_url``  ``/t/o/<token>.gif``             ``open``: campaign_id, ref, key
``link_N``          ``/t/c/<token>``                 ``click``: campaign_id, ref, key, link_id
                                                     (``CampaignLink.id`` of the N-th link)
``unsubscribe_url`` ``/u/<token>``                   ``unsub``: org_id, contact_id, list_id,
                                                     delivery_id (:mod:`analytics.links`); also
                                                     the ``List-Unsubscribe`` header (RFC 8058)
``preferences_url`` ``/p/<token>``                   ``prefs``: org_id, contact_id
                                                     (:mod:`analytics.links`)
``confirm_url``     ``/confirm/<token>``             ``reconfirm``: org_id, contact_id, list_id
                                                     (+ issue time; :mod:`analytics.links`)
``web_version_url`` ``/w/<token>``                   ``web``: campaign_id, delivery_id
``rsvp_*_url``      ``/t/r/<token>``                 ``rsvp``: campaign_id, delivery_id, answer
                                                     (``"yes"``, ``"no"`` or ``"maybe"``)
``poll_url_N``      ``/t/p/<token>``                 ``poll``: campaign_id, delivery_id, N
=================== ================================ ===========================================

RSVP and poll answers are things the person chooses to tell the body, so they always carry
the delivery id (``Answer`` is unique per delivery); the web version needs it to show the
person's own copy, and its endpoint records a ``web_view`` event with ``ref`` rules above.

Tracking policy ``off``: no pixel (the placeholder, if a layout still holds one, becomes a
transparent ``data:`` GIF) and every ``link_N`` is the stored URL itself, no redirect.
Links to the body's own website get ``utm_*`` parameters (:func:`target_url`), so the
cookieless site counter can attribute visits to the campaign: raw links get them here, and
the click endpoint must redirect to ``target_url(link.url, campaign_uuid, campaign_name,
website_url)`` rather than to ``link.url`` so that both policies count the same.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analytics import links as consent_links
from analytics.snippet import add_utm, utm_campaign_value
from analytics.tokens import Signer, TokenPurpose
from campaigns.personalise import POLL_VARIABLES

PER_CONTACT = "per_contact"
OFF = "off"
TRANSPARENT_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
RSVP_ANSWERS = (("rsvp_yes_url", "yes"), ("rsvp_no_url", "no"), ("rsvp_maybe_url", "maybe"))
_KEY_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def recipient_key() -> str:
    """A fresh random key for one rendered message (10 base-36 characters, ~51 bits)."""
    n = secrets.randbits(52)
    out = []
    for _ in range(10):
        n, r = divmod(n, 36)
        out.append(_KEY_ALPHABET[r])
    return "".join(out)


def target_url(url: str, campaign_uuid: str, campaign_name: str, website_url: str) -> str:
    """Where a link really goes: ``url``, with ``utm_*`` when it is on the body's own site."""
    if not website_url:
        return url
    return add_utm(
        url, utm_campaign_value(campaign_uuid, campaign_name), body_domains=[website_url]
    )


def tracks_contact(policy: str, tracking_consent: bool) -> bool:
    """Whether events may name the delivery (per-contact policy and the person's consent)."""
    return policy == PER_CONTACT and bool(tracking_consent)


@dataclass(frozen=True, slots=True)
class StoredLink:
    """One ``CampaignLink`` as the builder needs it: N (placeholder number), id, URL."""

    number: int
    link_id: int
    url: str


class RecipientLinks:
    """Builds the link placeholders' values for one campaign's recipients. Thread-safe."""

    def __init__(
        self,
        *,
        public_url: str,
        secret: str | bytes,
        policy: str,
        org_id: int,
        campaign_id: int,
        campaign_uuid: str,
        campaign_name: str = "",
        website_url: str = "",
        links: Sequence[StoredLink] = (),
        needed: Iterable[str] | None = None,
    ) -> None:
        """``needed``: the placeholder names the compiled parts use (None: build them all)."""
        self.base = public_url.rstrip("/")
        self._secret = secret
        self.policy = policy
        self.org_id = int(org_id)
        self.campaign_id = int(campaign_id)
        self._signer = Signer(secret)
        wanted = None if needed is None else frozenset(needed)

        def want(name: str) -> bool:
            return wanted is None or name in wanted

        self._links = [
            (f"link_{link.number}", link.link_id, link.url)
            for link in links
            if want(f"link_{link.number}")
        ]
        self._raw_links = {
            name: target_url(url, campaign_uuid, campaign_name, website_url)
            for name, _, url in self._links
        }
        self._pixel = want("open_pixel_url")
        self._prefs = want("preferences_url")
        self._web = want("web_version_url")
        self._confirm = want("confirm_url")
        self._rsvp = [(name, answer) for name, answer in RSVP_ANSWERS if want(name)]
        self._polls = [(name, n) for n, name in enumerate(POLL_VARIABLES, 1) if want(name)]

    # -- single URLs (also used by test sends and the web pages)

    def unsubscribe_url(self, contact_id: int, list_id: int | None, delivery_id: int = 0) -> str:
        return consent_links.unsubscribe_url(
            self.base, self._secret, self.org_id, int(contact_id), int(list_id or 0), delivery_id
        )

    def preferences_url(self, contact_id: int) -> str:
        return consent_links.preferences_url(self.base, self._secret, self.org_id, int(contact_id))

    def confirm_url(self, contact_id: int, list_id: int | None) -> str:
        """The re-permission link: confirming on ``/confirm/`` makes the membership sendable."""
        return consent_links.repermission_url(
            self.base, self._secret, self.org_id, int(contact_id), int(list_id or 0)
        )

    def web_version_url(self, delivery_id: int) -> str:
        token = self._signer.sign(TokenPurpose.WEB, self.campaign_id, int(delivery_id))
        return f"{self.base}/w/{token}"

    # -- everything for one message

    def values(
        self,
        delivery_id: int,
        contact_id: int,
        list_id: int | None,
        tracking_consent: bool = False,
    ) -> dict[str, str]:
        """The link placeholders' values for one delivery (always ``unsubscribe_url``)."""
        sign = self._signer.sign
        cid = self.campaign_id
        out: dict[str, str] = {
            "unsubscribe_url": self.unsubscribe_url(contact_id, list_id, int(delivery_id))
        }
        if self._prefs:
            out["preferences_url"] = self.preferences_url(contact_id)
        if self._web:
            out["web_version_url"] = self.web_version_url(delivery_id)
        if self._confirm and list_id:
            out["confirm_url"] = self.confirm_url(contact_id, list_id)
        if self.policy == OFF:
            if self._pixel:
                out["open_pixel_url"] = TRANSPARENT_GIF
            out.update(self._raw_links)
        else:
            ref = int(delivery_id) if tracks_contact(self.policy, tracking_consent) else 0
            key = recipient_key()
            if self._pixel:
                out["open_pixel_url"] = (
                    f"{self.base}/t/o/{sign(TokenPurpose.OPEN, cid, ref, key)}.gif"
                )
            base = self.base
            for name, link_id, _ in self._links:
                out[name] = f"{base}/t/c/{sign(TokenPurpose.CLICK, cid, ref, key, link_id)}"
        for name, answer in self._rsvp:
            out[name] = f"{self.base}/t/r/{sign(TokenPurpose.RSVP, cid, int(delivery_id), answer)}"
        for name, n in self._polls:
            out[name] = f"{self.base}/t/p/{sign(TokenPurpose.POLL, cid, int(delivery_id), n)}"
        return out


def stored_links(rows: Iterable[object]) -> list[StoredLink]:
    """``CampaignLink`` rows in id order → numbered links (row N is ``{{ link_N }}``)."""
    return [
        StoredLink(n, int(row.id), str(row.url))  # type: ignore[attr-defined]
        for n, row in enumerate(rows, 1)
    ]
