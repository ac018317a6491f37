"""Scrub personal data from Sentry events before they leave the machine."""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_IP = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b|\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b", re.I)
_SENSITIVE_KEYS = {
    "password",
    "token",
    "authorization",
    "cookie",
    "email",
    "first_name",
    "last_name",
    "csrf_token",
    "secret",
    "dkim_private_key",
    "smtp_url",
}


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return "[…]"
    if isinstance(value, str):
        return _IP.sub("[ip]", _EMAIL.sub("[email]", value))
    if isinstance(value, dict):
        return {
            k: "[filtered]" if str(k).lower() in _SENSITIVE_KEYS else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def scrub_event(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """``before_send``: no e-mail address, IP, cookie, header secret or form body is sent."""
    event.pop("user", None)
    request = event.get("request") or {}
    request.pop("cookies", None)
    request.pop("data", None)
    request.pop("env", None)
    if "headers" in request:
        request["headers"] = {
            k: v
            for k, v in request["headers"].items()
            if k.lower() not in {"cookie", "authorization", "x-forwarded-for", "x-real-ip"}
        }
    return _scrub(event)
