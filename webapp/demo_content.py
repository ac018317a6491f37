"""Lists, contacts and campaigns of the demo body: enough to try every screen at once."""

from __future__ import annotations

import logging
import random

from flask import current_app

from contacts import consent, lists, people
from contacts.db import db
from contacts.models import Organisation

log = logging.getLogger(__name__)

FIRST = [
    "Marie",
    "Jean",
    "Camille",
    "Louis",
    "Léa",
    "Hugo",
    "Chloé",
    "Lucas",
    "Inès",
    "Nathan",
    "Manon",
    "Théo",
    "Zoé",
    "Gabriel",
    "Jade",
    "Arthur",
    "Louise",
    "Jules",
    "Émma",
    "Noé",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "Fournier",
]
QUARTIERS = ["Centre", "Les Rives", "Saint-Jacques", "La Garenne"]
# Where the demo addresses came from: mostly clean, some risky so the flags show.
SOURCES = (
    ["web_form"] * 10
    + ["event_signup"] * 3
    + ["internal_file"] * 3
    + ["directory"]
    + ["exchanged"] * 2
    + ["unknown"]
)


def seed_content(org: Organisation, contacts: int = 120) -> None:
    """Seed lists with consent-traced contacts, a draft newsletter and an invitation."""
    rng = random.Random(2010)
    secret = current_app.config["CRIEUR_SECRET_KEY"]
    newsletter = lists.create_list(
        org.id,
        "Lettre d'information",
        "newsletter",
        description="Les nouvelles de Belcombe, une fois par mois.",
        double_opt_in=True,
        custom_fields=["quartier"],
    )
    invitations = lists.create_list(
        org.id,
        "Invitations aux événements",
        "invitations",
        description="Inaugurations, réunions publiques, fêtes de quartier.",
        double_opt_in=False,
        custom_fields=["quartier"],
    )
    for n in range(contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{n}@exemple.fr".replace("é", "e").replace("è", "e")
        contact, _ = people.get_or_create_contact(
            org.id,
            email,
            secret=secret,
            first_name=first,
            last_name=last,
            fields={"quartier": rng.choice(QUARTIERS)},
        )
        source = rng.choice(SOURCES)
        basis = "public_task" if source in ("internal_file", "directory") else "consent"
        for mlist in (newsletter, invitations) if n % 3 else (newsletter,):
            consent.record_consent(
                org.id, contact.id, mlist.id, "grant", basis, source, {"demo": True}
            )
            if source in ("web_form", "event_signup"):
                consent.record_consent(
                    org.id,
                    contact.id,
                    mlist.id,
                    "confirm",
                    evidence={"demo": True, "double_opt_in": True},
                )
    db.session.flush()
    _seed_campaigns(org, newsletter.id, invitations.id)
    try:
        from analytics.benchmark.demo import seed_benchmark_demo
    except ImportError:
        return
    seed_benchmark_demo(org)


def _seed_campaigns(org: Organisation, newsletter_id: int, invitations_id: int) -> None:
    """A newsletter that is sent when ``crieur run`` starts (into the outbox, by the
    in-process worker), and an invitation left as a draft to work on."""
    from campaigns import editing, sending
    from webapp.models import User

    users = {
        u.role: u for u in db.session.scalars(db.select(User).filter_by(organisation_id=org.id))
    }
    for key, list_id in (("lettre-mensuelle", newsletter_id), ("reunion-publique", invitations_id)):
        try:
            with db.session.begin_nested():
                campaign = editing.create_from_starter(
                    org.id, key, user_id=users["officer"].id, list_ids=[list_id]
                )
                if key != "lettre-mensuelle":
                    continue
                editing.submit_campaign(
                    org.id, campaign, user_id=users["officer"].id, role="officer"
                )
                editing.approve_campaign(
                    org.id,
                    campaign,
                    user_id=users["director"].id,
                    role="director",
                    comment="Parfait, on envoie.",
                )
                sending.start_sending(org.id, campaign, users["director"].id, "director")
        except Exception:  # a demo must start even without node: no such campaign then
            log.warning("demo campaign %s not created", key, exc_info=True)
