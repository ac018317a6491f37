"""Errors as people and programs expect them: pages in the browser, JSON under /api/v1."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from contacts.db import DomainError, db
from webapp.i18n import error_text, translate_all

MESSAGES = {
    400: _l("Requête invalide."),
    401: _l("Authentification requise."),
    403: _l("Vous n'avez pas le droit de faire cela."),
    404: _l("Page introuvable."),
    405: _l("Méthode non autorisée."),
    409: _l("Conflit avec l'état actuel."),
    413: _l("Fichier trop volumineux."),
    429: _l("Trop de tentatives : réessayez dans quelques minutes."),
    500: _l("Erreur interne : l'équipe technique a été prévenue."),
}
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "too_many_requests",
    500: "internal_error",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def error_response(status: int, code: str, message: str, **details):
    if wants_json():
        body = {"error": {"code": code, "message": message}}
        if details:
            body["error"]["details"] = details
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        return error_response(exc.status, exc.code, error_text(exc), **translate_all(exc.details))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            403, "csrf", _("Jeton de sécurité manquant ou expiré : rechargez la page.")
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status) or exc.description or ""
        if status == 400 and exc.description and not exc.description.startswith("The browser"):
            message = exc.description
        response = error_response(status, CODES.get(status, "error"), str(message))
        if status == 405 and exc.get_response().headers.get("Allow"):
            resp, code = response
            resp = app.make_response((resp, code))
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
            return resp
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", str(MESSAGES[500]))
