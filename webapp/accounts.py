"""Creating and managing the people who sign in."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from contacts.db import DomainError, db
from webapp.auth import end_all_sessions, hash_password, select_user
from webapp.models import Role, User

MIN_PASSWORD = 12


def check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise DomainError(
            "weak_password",
            "Le mot de passe doit compter au moins %(min)s caractères.",
            params={"min": MIN_PASSWORD},
        )
    if len(password) > 1024:
        raise DomainError("weak_password", "Mot de passe trop long.")


def create_user(email: str, role: str, org_id: int | None, password: str, name: str = "") -> User:
    """A user of a body (officer, director, admin) or of the association (analyst)."""
    try:
        email = validate_email((email or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise DomainError(
            "invalid_email", "Adresse e-mail invalide : %(reason)s", params={"reason": str(exc)}
        ) from exc
    if role not in {r.value for r in Role}:
        raise DomainError("invalid_role", "Rôle inconnu (officer, director, admin ou analyst).")
    if role == Role.ANALYST and org_id is not None:
        raise DomainError(
            "invalid_role", "Un analyste appartient à l'association, pas à un organisme."
        )
    if role != Role.ANALYST and org_id is None:
        raise DomainError("missing_org", "Ce rôle demande un organisme (--org).")
    if db.session.scalars(select_user(email)).first():
        raise DomainError("duplicate_user", "Un compte existe déjà pour cette adresse.", status=409)
    check_new_password(password)
    user = User(
        email=email,
        role=role,
        organisation_id=org_id,
        name=name.strip()[:200],
        password_hash=hash_password(password),
    )
    db.session.add(user)
    db.session.flush()
    return user


def set_password(user: User, password: str) -> None:
    check_new_password(password)
    user.password_hash = hash_password(password)
    end_all_sessions(user)


def set_disabled(user: User, disabled: bool) -> None:
    user.is_disabled = disabled
    if disabled:
        end_all_sessions(user)


def org_users(org_id: int) -> list[User]:
    return list(
        db.session.scalars(select(User).where(User.organisation_id == org_id).order_by(User.email))
    )
