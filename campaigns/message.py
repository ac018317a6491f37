"""Message assembly: the RFC 5322 bytes of every e-mail Crieur sends.

A :class:`MessageTemplate` is built once per campaign. It pre-encodes everything that is
the same for every recipient (From, Reply-To, Subject, List-Id, Feedback-ID, the MIME
skeleton with its boundaries, the ``.ics`` attachment), so that :meth:`MessageTemplate.render`
only encodes what differs: the To header, Message-ID, Date, List-Unsubscribe and the two
bodies. Building an ``email.message.EmailMessage`` per recipient costs about 1 ms; this
costs a few tens of microseconds for a 14 KB message (see ``bench/reports/smtp.md``).

What every message guarantees, whatever the input:
- every line is at most 998 octets (RFC 5322): bodies are quoted-printable or base64
  (76-character lines) and headers are folded to 78 wherever the value allows it (an
  over-long URL or Message-ID is refused rather than cut);
- header values never contain a control character: a name or subject holding
  ``"\\r\\nBcc: x@evil"`` becomes an encoded word, never a new header;
- the whole message is 7-bit ASCII with CRLF line ends, so no relay needs to re-encode it
  (which would break a DKIM signature).

This module knows nothing of the database: callers pass final, already personalised
values.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import secrets
import time
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import format_datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from campaigns.dkim import DkimSigner

Encoding = Literal["base64", "quoted-printable"]

TEST_SUBJECT_PREFIX = "[TEST] "
MAX_HEADER_LINE = 78  # RFC 5322 §2.1.1 recommendation; the hard limit is 998
_ENCODED_WORD_BYTES = 39  # 39 UTF-8 bytes -> 52 base64 chars -> a 64-char encoded word

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: none may reach a
# header, where CR or LF would start a new header (injection) and the others confuse readers.
_CONTROLS = {c: " " for c in [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]}
_HEADER_SAFE_ASCII = re.compile(r"[\x20-\x7e]*\Z")
# What may stand in an address or a URL put inside <...>: printable ASCII minus the
# characters that would end or split it.
_ANGLE_SAFE = re.compile(r"[!#-;=?-~]+\Z")  # printable ASCII without space, '"', '<' and '>'
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+\Z")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\Z")


class MessageBytes(bytes):
    """Message bytes as :meth:`MessageTemplate.render` makes them: CRLF line ends only,
    ending with CRLF, and no line starting with a dot.

    :class:`campaigns.smtp.SmtpTransport` sends these as they are, skipping the scans for
    bare line ends and dot-stuffing that any other bytes get (about a third of its
    per-message CPU). Any slicing or concatenation gives plain ``bytes`` again, so a
    modified message never keeps the promise by accident.
    """

    __slots__ = ()


class HeaderValueError(ValueError):
    """A value that cannot go into a header safely (bad address, URL with spaces...)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to every message of a campaign, e.g. the invitation's ``.ics``.

    ``content_type`` is the full MIME type with its parameters, e.g.
    ``"text/calendar; charset=utf-8; method=PUBLISH"``.
    """

    content: bytes
    filename: str
    content_type: str = "application/octet-stream"


def ics_attachment(content: bytes, filename: str = "invitation.ics") -> Attachment:
    """The invitation's calendar file, as clients expect it (RFC 5545, method PUBLISH)."""
    return Attachment(content, filename, "text/calendar; charset=utf-8; method=PUBLISH")


# --------------------------------------------------------------------------- header text


def clean_header_text(value: str) -> str:
    """Replace every control character (CR, LF, NUL, TAB...) by a space and trim."""
    return value.translate(_CONTROLS).strip()


def _utf8_chunks(value: str, limit: int = _ENCODED_WORD_BYTES) -> list[bytes]:
    """Split ``value`` into UTF-8 chunks of at most ``limit`` bytes, never inside a character."""
    data = value.encode("utf-8")
    if len(data) <= limit:
        return [data]
    chunks: list[bytes] = []
    current: list[str] = []
    size = 0
    for char in value:
        n = len(char.encode("utf-8"))
        if size + n > limit:
            chunks.append("".join(current).encode("utf-8"))
            current, size = [], 0
        current.append(char)
        size += n
    if current:
        chunks.append("".join(current).encode("utf-8"))
    return chunks


def encoded_words(value: str) -> list[str]:
    """RFC 2047 ``=?utf-8?b?...?=`` words for ``value``, each at most 64 characters."""
    return [
        "=?utf-8?b?" + binascii.b2a_base64(chunk, newline=False).decode("ascii") + "?="
        for chunk in _utf8_chunks(value)
    ]


def _fold_words(words: list[str], first_width: int, sep: str = " ") -> str:
    """Join ``words`` with ``sep``, starting a continuation line when one would pass 78."""
    out: list[str] = []
    width = first_width
    for i, word in enumerate(words):
        if i == 0:
            out.append(word)
            width += len(word)
        elif width + len(sep) + len(word) > MAX_HEADER_LINE:
            out.append("\r\n " + word)
            width = 1 + len(word)
        else:
            out.append(sep + word)
            width += len(sep) + len(word)
    return "".join(out)


def encode_unstructured(name: str, value: str) -> str:
    """The folded value of an unstructured header (Subject): plain ASCII or encoded words.

    ``name`` is the header name, used to keep the first line within 78 octets.
    """
    value = clean_header_text(value)
    first = len(name) + 2
    if _HEADER_SAFE_ASCII.match(value) and "=?" not in value:
        if first + len(value) <= MAX_HEADER_LINE:
            return value
        words = value.split(" ")
        if all(len(w) <= MAX_HEADER_LINE - 2 for w in words) and "" not in words:
            return _fold_words(words, first)
    return _fold_words(encoded_words(value), first)


def _phrase_words(name: str) -> list[str]:
    """The display-name part of an address as header words (quoted string or encoded words)."""
    name = clean_header_text(name)
    if not name:
        return []
    if _HEADER_SAFE_ASCII.match(name) and "=?" not in name and len(name) <= 60:
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return encoded_words(name)


def check_address(address: str) -> str:
    """The address as it may go into a header or an SMTP command, or HeaderValueError.

    The caller is expected to have validated it (``email-validator``); this is the last
    line of defence against injection, and puts an internationalised domain in its ASCII
    form. A non-ASCII local part needs SMTPUTF8, which Crieur does not use: refused.
    """
    if not isinstance(address, str) or address.count("@") != 1:
        raise HeaderValueError(f"adresse invalide : {address!r}")
    local, domain = address.split("@")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise HeaderValueError(f"domaine invalide : {address!r}") from exc
    if not (_LOCAL_PART.match(local) and _DOMAIN.match(domain)) or len(address) > 320:
        raise HeaderValueError(f"adresse invalide : {address!r}")
    return f"{local}@{domain}"


def format_address(header: str, address: str, name: str = "") -> str:
    """The folded value of an address header (From, To, Reply-To): ``"Name" <addr>``."""
    address = check_address(address)
    words = _phrase_words(name)
    if not words:
        return address
    return _fold_words([*words, f"<{address}>"], len(header) + 2)


def _angle(value: str, what: str) -> str:
    """``<value>``, refusing anything that could break out of the brackets."""
    if not _ANGLE_SAFE.match(value) or len(value) > 900:
        raise HeaderValueError(f"{what} invalide : {value!r}")
    return f"<{value}>"


def format_message_id(message_id: str) -> str:
    """``<id@domain>``, whether or not the caller put the brackets."""
    if message_id.startswith("<") and message_id.endswith(">"):
        message_id = message_id[1:-1]
    if "@" not in message_id:
        raise HeaderValueError(f"Message-ID invalide : {message_id!r}")
    return _angle(message_id, "Message-ID")


def delivery_message_id(delivery_id: int, campaign_uuid: str, org_domain: str) -> str:
    """The deterministic Message-ID of one delivery, reused on every retry of it."""
    return f"<d{int(delivery_id)}.{campaign_uuid}@{org_domain}>"


def random_message_id(org_domain: str) -> str:
    """A fresh Message-ID for transactional mail (confirmations, sign-in links)."""
    return f"<t{uuid_module.uuid4().hex}@{org_domain}>"


def list_unsubscribe_value(url: str, mailto: str | None = None) -> str:
    """RFC 2369 ``<https://...>, <mailto:...>``, the HTTPS link first (RFC 8058)."""
    if not url.startswith(("https://", "http://")):
        raise HeaderValueError(f"lien de désinscription invalide : {url!r}")
    value = _angle(url, "lien de désinscription")
    if mailto:
        if not mailto.startswith("mailto:"):
            mailto = "mailto:" + mailto
        value += ",\r\n " + _angle(mailto, "adresse de désinscription")
    return value


# -------------------------------------------------------------------------------- bodies


def _b64_lines(data: bytes) -> bytes:
    """Base64 in CRLF-terminated lines of 76 characters (one C call, then slicing)."""
    enc = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([enc[i : i + 76] for i in range(0, len(enc), 76)])


def _qp_lines(text: str) -> bytes:
    """Quoted-printable, CRLF line ends, lines of at most 76 characters."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # b2a_qp follows the input's line ends; from LF-only input it emits LF only, soft
    # breaks included, so one replace gives CRLF everywhere. A line starting with "." is
    # written "=2E" (same text once decoded) so that SMTP needs no dot-stuffing.
    qp = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    if qp[:1] == b".":
        qp = b"=2E" + qp[1:]
    if b"\n." in qp:
        qp = qp.replace(b"\n.", b"\n=2E")
    return qp.replace(b"\n", b"\r\n")


def _encode_body(text: str | bytes, encoding: Encoding) -> bytes:
    if encoding == "base64":
        return _b64_lines(text if isinstance(text, bytes) else text.encode("utf-8"))
    return _qp_lines(text.decode("utf-8") if isinstance(text, bytes) else text)


def _part_header(content_type: str, encoding: Encoding) -> bytes:
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode("ascii")


def _attachment_header(att: Attachment) -> bytes:
    content_type = clean_header_text(att.content_type)
    if not _HEADER_SAFE_ASCII.match(content_type) or len(content_type) > 200:
        raise HeaderValueError(f"type MIME invalide : {att.content_type!r}")
    filename = clean_header_text(att.filename).replace("\\", "_").replace('"', "_")
    if _HEADER_SAFE_ASCII.match(filename) and len(filename) <= 60:
        name_param = f'filename="{filename}"'
        type_param = f';\r\n name="{filename}"'
    else:  # RFC 2231 for accented or long names
        quoted = "".join(
            chr(b) if b < 128 and (chr(b).isalnum() or chr(b) in "-._") else f"%{b:02X}"
            for b in filename.encode("utf-8")[:150]
        )
        name_param = f"filename*=utf-8''{quoted}"
        type_param = ""
    return (
        f"Content-Type: {content_type}{type_param}\r\n"
        f"Content-Disposition: attachment;\r\n {name_param}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii")


# ---------------------------------------------------------------------------------- date

_date_cache: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """The Date value, formatted once per second (it is the same for every message in it)."""
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] == now:
        return cached[1]
    value = format_datetime(dt.datetime.fromtimestamp(now, dt.UTC)).encode("ascii")
    _date_cache = (now, value)
    return value


# ------------------------------------------------------------------------------ template


class MessageTemplate:
    """The pre-encoded frame of one campaign's messages; :meth:`render` fills it per recipient.

    Thread-safe: it holds only immutable bytes after construction.
    """

    def __init__(
        self,
        *,
        sender_email: str,
        subject: str,
        org_domain: str,
        sender_name: str = "",
        reply_to: str | None = None,
        reply_to_name: str = "",
        list_id: str | None = None,
        list_name: str = "",
        feedback_id: str | None = None,
        attachment: Attachment | None = None,
        dkim: DkimSigner | None = None,
        extra_headers: Mapping[str, str] | None = None,
        text_encoding: Encoding = "quoted-printable",
        html_encoding: Encoding = "base64",
    ) -> None:
        """Pre-encode what every message shares.

        ``list_id`` is the RFC 2919 identifier (``"lettre.mairie-x.fr"``), ``list_name`` its
        description (``"Lettre d'info"``). ``subject`` is the default subject; a
        personalised one can be passed to :meth:`render`. ``extra_headers`` are ASCII
        headers added as they are (``{"Auto-Submitted": "auto-generated"}``).
        """
        self.org_domain = org_domain
        self.sender_email = check_address(sender_email)
        self.subject = subject
        self.dkim = dkim
        self.text_encoding: Encoding = text_encoding
        self.html_encoding: Encoding = html_encoding
        self._subject_header = self._subject_bytes(subject)

        sender = [f"From: {format_address('From', sender_email, sender_name)}"]
        if reply_to:
            sender.append(f"Reply-To: {format_address('Reply-To', reply_to, reply_to_name)}")
        self._sender_headers = "\r\n".join(sender).encode("ascii")
        shared: list[str] = []
        if list_id:
            words = [*_phrase_words(list_name), _angle(list_id, "List-Id")]
            shared.append("List-Id: " + _fold_words(words, len("List-Id: ")))
        if feedback_id:
            feedback = clean_header_text(feedback_id)
            if not _HEADER_SAFE_ASCII.match(feedback) or len(feedback) > 200:
                raise HeaderValueError(f"Feedback-ID invalide : {feedback_id!r}")
            shared.append(f"Feedback-ID: {feedback}")
        for name, value in (extra_headers or {}).items():
            if not re.fullmatch(r"[A-Za-z0-9-]{1,60}", name):
                raise HeaderValueError(f"nom d'en-tête invalide : {name!r}")
            clean = clean_header_text(value)
            if not _HEADER_SAFE_ASCII.match(clean) or len(name) + len(clean) > 900:
                raise HeaderValueError(f"en-tête invalide : {name}: {value!r}")
            shared.append(f"{name}: {clean}")
        shared.append("MIME-Version: 1.0")
        self._shared_headers = ("\r\n".join(shared) + "\r\n").encode("ascii")

        # Boundaries start with "=_": that sequence never occurs in quoted-printable or
        # base64 output, so no body can ever contain a boundary line.
        token = secrets.token_hex(12)
        alt, mixed = f"=_alt_{token}", f"=_mix_{token}"
        text_type = "text/plain; charset=utf-8"
        html_type = "text/html; charset=utf-8"
        text_head = _part_header(text_type, text_encoding)
        html_head = _part_header(html_type, html_encoding)
        alt_open = f'multipart/alternative;\r\n boundary="{alt}"'
        if attachment is None:
            # (headers+body skeleton) for messages with and without an HTML part
            self._alt_frame = (
                f"Content-Type: {alt_open}\r\n\r\n--{alt}\r\n".encode("ascii") + text_head,
                f"\r\n--{alt}\r\n".encode("ascii") + html_head,
                f"\r\n--{alt}--\r\n".encode("ascii"),
            )
            self._text_frame = (text_head, b"\r\n")
        else:
            att = _attachment_header(attachment) + _b64_lines(attachment.content)
            mixed_open = f'Content-Type: multipart/mixed;\r\n boundary="{mixed}"\r\n\r\n'
            self._alt_frame = (
                (f"{mixed_open}--{mixed}\r\nContent-Type: {alt_open}\r\n\r\n--{alt}\r\n").encode(
                    "ascii"
                )
                + text_head,
                f"\r\n--{alt}\r\n".encode("ascii") + html_head,
                f"\r\n--{alt}--\r\n\r\n--{mixed}\r\n".encode("ascii")
                + att
                + f"\r\n--{mixed}--\r\n".encode("ascii"),
            )
            self._text_frame = (
                f"{mixed_open}--{mixed}\r\n".encode("ascii") + text_head,
                f"\r\n--{mixed}\r\n".encode("ascii") + att + f"\r\n--{mixed}--\r\n".encode(),
            )

    @staticmethod
    def _subject_bytes(subject: str) -> bytes:
        return ("Subject: " + encode_unstructured("Subject", subject)).encode("ascii")

    def message_id_for(self, delivery_id: int, campaign_uuid: str) -> str:
        """The deterministic Message-ID of a delivery, in this body's mail domain."""
        return delivery_message_id(delivery_id, campaign_uuid, self.org_domain)

    def render(
        self,
        to_email: str,
        to_name: str,
        message_id: str,
        html: str | bytes | None,
        text: str | bytes,
        unsubscribe_url: str | None,
        unsubscribe_mailto: str | None = None,
        *,
        subject: str | None = None,
    ) -> MessageBytes:
        """The final message bytes for one recipient (CRLF, 7-bit, DKIM-signed if configured).

        ``html`` and ``text`` are the already personalised bodies (``str``, or UTF-8
        ``bytes`` if the caller personalised in bytes); ``html`` may be None or empty for a
        text-only message. ``subject`` overrides the template's subject (a
        personalised one, or a test send's ``[TEST]`` prefix). Raises HeaderValueError for
        an address, Message-ID or URL that cannot be put in a header safely.
        """
        head: list[bytes] = [
            b"Date: ",
            _date_header(),
            b"\r\n",
            self._sender_headers,
            b"\r\nTo: ",
            format_address("To", to_email, to_name).encode("ascii"),
            b"\r\n",
            self._subject_header
            if subject is None or subject == self.subject
            else self._subject_bytes(subject),
            b"\r\nMessage-ID: ",
            format_message_id(message_id).encode("ascii"),
        ]
        if unsubscribe_url:
            head += [
                b"\r\nList-Unsubscribe: ",
                list_unsubscribe_value(unsubscribe_url, unsubscribe_mailto).encode("ascii"),
                b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click",
            ]
        head += [b"\r\n", self._shared_headers]
        if html:
            first, middle, last = self._alt_frame
            head += [
                first,
                _encode_body(text, self.text_encoding),
                middle,
                _encode_body(html, self.html_encoding),
                last,
            ]
        else:
            first, last = self._text_frame
            body = _encode_body(text, self.text_encoding)
            if last == b"\r\n" and (not body or body.endswith(b"\r\n")):
                last = b""  # a single part: its own final CRLF ends the message
            head += [first, body, last]
        raw = b"".join(head)
        if self.dkim is not None:
            raw = self.dkim.sign(raw)
        return MessageBytes(raw)


def build_simple_message(
    *,
    sender_email: str,
    to_email: str,
    subject: str,
    text: str,
    html: str | None = None,
    sender_name: str = "",
    to_name: str = "",
    reply_to: str | None = None,
    message_id: str | None = None,
    org_domain: str | None = None,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    list_id: str | None = None,
    list_name: str = "",
    attachment: Attachment | None = None,
    dkim: DkimSigner | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> MessageBytes:
    """One transactional message (double opt-in confirmation, sign-in link, test send).

    Same header rules as campaign mail. Without ``message_id`` a random one is made in
    ``org_domain`` (default: the sender's domain). Without ``html`` the message is a single
    text/plain part.
    """
    domain = org_domain or check_address(sender_email).split("@")[1]
    template = MessageTemplate(
        sender_email=sender_email,
        sender_name=sender_name,
        subject=subject,
        org_domain=domain,
        reply_to=reply_to,
        list_id=list_id,
        list_name=list_name,
        attachment=attachment,
        dkim=dkim,
        extra_headers=extra_headers,
    )
    return template.render(
        to_email,
        to_name,
        message_id or random_message_id(domain),
        html,
        text,
        unsubscribe_url,
        unsubscribe_mailto,
    )
