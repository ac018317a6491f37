"""Response headers and the Origin check that backs up CSRF tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, request

from webapp.extensions import csrf

CSP = (
    "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'; frame-src 'self'"
)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def init_app(app: Flask) -> None:
    @app.before_request
    def check_origin() -> None:
        """Refuse a state change whose Origin is another site (ASVS V4.2, in depth of CSRF)."""
        if request.method not in UNSAFE_METHODS or request.path.startswith("/api/"):
            return
        if request.endpoint and csrf._is_exempt():  # public endpoints (one-click, beacon)
            return
        origin = request.headers.get("Origin")
        if not origin:
            return  # older clients send none; the CSRF token still protects the form
        if urlsplit(origin).netloc != request.host:
            abort(403)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if "frame-ancestors *" in response.headers.get("Content-Security-Policy", ""):
            del response.headers["X-Frame-Options"]
        response.headers.setdefault("Permissions-Policy", "interest-cohort=()")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
