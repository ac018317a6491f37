"""Users and API tokens: who may act in the web app and the API."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from contacts.db import db, utcnow


class Role(enum.StrEnum):
    OFFICER = "officer"
    DIRECTOR = "director"
    ADMIN = "admin"
    ANALYST = "analyst"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null only for the association's analysts, who belong to no body.
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(20), default=Role.OFFICER)
    is_disabled: Mapped[bool] = mapped_column(default=False)
    # Bumped on sign-out, password change and disabling: every older session dies.
    session_version: Mapped[int] = mapped_column(default=1)
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses disabled users
        return not self.is_disabled

    @property
    def org_id(self) -> int | None:
        return self.organisation_id


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def generate() -> str:
        return "crieur_" + secrets.token_urlsafe(32)


class AuditLine(db.Model):
    """Security-relevant refusals (foreign ids, forbidden roles): who tried what."""

    __tablename__ = "audit_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
