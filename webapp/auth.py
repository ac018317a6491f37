"""Who is asking: password hashing, sessions that can be revoked, API tokens, roles.

Role checks live here and nowhere else: views declare ``@roles_required(...)`` and the API
``@api_roles(...)``; the tenant of every query is ``current_org_id()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, abort, g, request
from flask_login import current_user, login_user

from contacts.db import db, utcnow
from webapp.extensions import login_manager
from webapp.models import ApiToken, AuditLine, Role, User

# Argon2id, memory-hard (OWASP: m=19 MiB, t=2, p=1 is the floor; we use 64 MiB, t=3).
_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
# Verified against when the e-mail is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("crieur-timing-equaliser")

F = TypeVar("F", bound=Callable[..., Any])

BODY_ROLES = (Role.OFFICER, Role.DIRECTOR, Role.ADMIN)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def use_fast_hashing_for_tests() -> None:
    """Cheaper Argon2 parameters for the test suite (still Argon2id)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    _DUMMY_HASH = _hasher.hash("crieur-timing-equaliser")


def check_password(user: User | None, password: str) -> bool:
    """True when ``password`` matches; costs the same whether or not the user exists."""
    target = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    if user is None or not ok:
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return True


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalars(select_user(email)).first()
    if not check_password(user, password) or user is None or user.is_disabled:
        return None
    return user


def select_user(email: str):
    from sqlalchemy import func, select

    return select(User).where(func.lower(User.email) == email.strip().lower())


def sign_in(user: User) -> None:
    user.last_login_at = utcnow()
    db.session.commit()
    login_user(user)


def end_all_sessions(user: User) -> None:
    """Invalidate every session of ``user`` (sign-out, password change, disabling)."""
    user.session_version = (user.session_version or 0) + 1


def init_login(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(raw: str) -> User | None:
        try:
            user_id, version = (int(part) for part in raw.split(":", 1))
        except ValueError:
            return None
        user = db.session.get(User, user_id)
        if user is None or user.is_disabled or user.session_version != version:
            return None
        return user


def current_org_id() -> int:
    """The body of the signed-in user or token; 404 for analysts, who have none."""
    user = g.get("api_user") or current_user
    org_id = getattr(user, "organisation_id", None)
    if org_id is None:
        abort(404)
    return org_id


def audit(action: str, detail: str = "") -> None:
    """Record a refusal worth a security review; committed on its own."""
    user = g.get("api_user") or current_user
    db.session.add(
        AuditLine(
            user_id=getattr(user, "id", None),
            organisation_id=getattr(user, "organisation_id", None),
            action=action[:100],
            detail=detail[:500],
        )
    )
    db.session.commit()


def roles_required(*roles: str) -> Callable[[F], F]:
    """Pages: signed in (else the sign-in page) and holding one of ``roles`` (else 403)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                audit("forbidden_role", f"{request.method} {request.path}")
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def user_for_token(raw: str) -> tuple[User, ApiToken] | None:
    token = db.session.scalars(
        db.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(raw))
    ).first()
    if token is None or token.revoked_at is not None:
        return None
    user = db.session.get(User, token.user_id)
    if user is None or user.is_disabled:
        return None
    token.last_used_at = utcnow()
    return user, token


def create_token(user: User, name: str = "") -> str:
    """A new API token for ``user``; only its hash is stored, so show it now or never."""
    raw = ApiToken.generate()
    db.session.add(
        ApiToken(user_id=user.id, name=name, token_hash=ApiToken.hash(raw), prefix=raw[:12])
    )
    return raw
