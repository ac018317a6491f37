"""The demo body that ``make run`` seeds on first start, so there is something to try."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from contacts.db import db
from contacts.models import Organisation
from contacts.organisations import create_organisation
from webapp.accounts import create_user

DEMO_USERS = (
    ("officer", "agent@demo.crieur.fr"),
    ("director", "direction@demo.crieur.fr"),
    ("admin", "admin@demo.crieur.fr"),
    ("analyst", "analyste@association.crieur.fr"),
)


def seed_demo(only_if_empty: bool = False) -> list[tuple[str, str, str]]:
    """Create the demo body and its users; returns (role, e-mail, password) to print."""
    if only_if_empty and db.session.scalar(select(func.count(Organisation.id))):
        return []
    org = create_organisation(
        "Ville de Belcombe-sur-Loire",
        "commune",
        "Centre-Val de Loire",
        12400,
        from_name="Mairie de Belcombe",
        from_address="communication@belcombe.example.fr",
        reply_to="mairie@belcombe.example.fr",
        postal_address="Hôtel de ville, 1 place de la République, 45000 Belcombe-sur-Loire",
        dpo_contact="dpo@belcombe.example.fr",
        website_url="https://www.belcombe.example.fr",
        tracking_policy="aggregate",
    )
    credentials = []
    for role, email in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        create_user(email, role, None if role == "analyst" else org.id, password)
        credentials.append((role, email, password))
    try:
        from webapp.demo_content import seed_content
    except ImportError:
        pass
    else:
        seed_content(org)
    return credentials
