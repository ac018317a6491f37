"""Test builders with keyword defaults (CTFd, Keila): add, flush, return the object."""

from __future__ import annotations

import itertools
from typing import Any

from contacts.db import db

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def _n() -> int:
    return next(_counter)


def make_org(
    name: str | None = None,
    kind: str = "commune",
    region: str = "Bretagne",
    population: int | None = 5000,
    **settings: Any,
):
    from contacts.organisations import create_organisation

    n = _n()
    settings.setdefault("from_address", f"communication@ville{n}.example.fr")
    settings.setdefault("from_name", f"Ville {n}")
    settings.setdefault("postal_address", f"{n} place de la Mairie, 35000 Ville")
    return create_organisation(name or f"Ville {n}", kind, region, population, **settings)


def make_user(org=None, role: str = "officer", email: str | None = None, password: str = PASSWORD):
    from webapp.accounts import create_user

    return create_user(
        email or f"user{_n()}@example.org", role, None if org is None else org.id, password
    )


def make_list(
    org,
    name: str | None = None,
    purpose: str = "newsletter",
    double_opt_in: bool = False,
    **kwargs: Any,
):
    from contacts.models import MailingList

    lst = MailingList(
        organisation_id=org.id,
        name=name or f"Liste {_n()}",
        purpose=purpose,
        double_opt_in=double_opt_in,
        **kwargs,
    )
    db.session.add(lst)
    db.session.flush()
    return lst


# Each area keeps its builders next to its own concerns; import them from here.
from tests.factories_benchmark import answered_body, make_edition  # noqa: E402, F401
from tests.factories_campaigns import make_campaign, make_event  # noqa: E402, F401
from tests.factories_contacts import make_contact, make_suppressed  # noqa: E402, F401
from tests.factories_sending import make_contacts, make_ready_campaign  # noqa: E402, F401
