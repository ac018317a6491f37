"""Grants in bulk, for imports: many contacts put on one list, ledger rows included.

The rule is ``contacts.consent.record_consent``'s for a file, applied in two statements
(SQLite) or one COPY and one statement (PostgreSQL) instead of a call per contact.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from contacts.consent import check_legal_basis, check_source, is_risky
from contacts.db import db, utcnow
from contacts.dialect import dialect_of, pg_copy_rows
from contacts.models import (
    ConsentAction,
    ConsentEvent,
    MailingList,
    Subscription,
    SubscriptionStatus,
)


def bulk_grant(
    org_id: int,
    mlist: MailingList,
    grants: Sequence[tuple[int, dict[str, Any]]],
    *,
    source: str,
    legal_basis: str,
    import_batch_id: int | None = None,
    actor_user_id: int | None = None,
    api_token_id: int | None = None,
    at: dt.datetime | None = None,
    executor: Any = None,
) -> int:
    """Grant many contacts on one list in bulk (imports); returns how many were granted.

    ``grants`` are ``(contact_id, evidence)`` for active contacts with no subscription on
    the list yet: the caller (``contacts.imports``) has sorted out duplicates, withdrawals
    and suppressed addresses. The rule is ``consent.record_consent``'s for a file: active at
    once, or pending and flagged when the source is risky (double opt-in concerns forms).
    A subscription created meanwhile by a concurrent sign-up is left alone (not counted).
    ``mlist`` needs only ``id`` and ``purpose``; ``executor`` is the session (default) or
    a Connection (the import's writer thread). The caller commits.
    """
    if not grants:
        return 0
    check_source(source)
    check_legal_basis(legal_basis)
    at = at or utcnow()
    risky = is_risky(source)
    status = SubscriptionStatus.PENDING if risky else SubscriptionStatus.ACTIVE
    executor = executor if executor is not None else db.session
    if dialect_of(executor) == "postgresql":
        return _pg_bulk_grant(
            executor, org_id, mlist, grants, status, source, legal_basis, risky, at,
            import_batch_id, actor_user_id, api_token_id,
        )  # fmt: skip
    table = Subscription.__table__
    inserted = executor.execute(
        sqlite_insert(table)
        .on_conflict_do_nothing(index_elements=["list_id", "contact_id"])
        .returning(table.c.contact_id),
        [
            {
                "organisation_id": org_id,
                "list_id": mlist.id,
                "contact_id": contact_id,
                "status": status,
                "source": source,
                "legal_basis": legal_basis,
                "is_risky": risky,
                "tracking_consent": False,
                "created_at": at,
            }
            for contact_id, _ in grants
        ],
    )
    done = {contact_id for (contact_id,) in inserted}
    grants = [(contact_id, evidence) for contact_id, evidence in grants if contact_id in done]
    if not grants:
        return 0
    executor.execute(
        ConsentEvent.__table__.insert(),
        [
            {
                "organisation_id": org_id,
                "contact_id": contact_id,
                "list_id": mlist.id,
                "purpose": mlist.purpose,
                "action": ConsentAction.GRANT,
                "legal_basis": legal_basis,
                "source": source,
                "evidence": evidence,
                "actor_user_id": actor_user_id,
                "import_batch_id": import_batch_id,
                "api_token_id": api_token_id,
                "created_at": at,
            }
            for contact_id, evidence in grants
        ],
    )
    return len(grants)


# PostgreSQL: the grants go in by COPY into a temporary table, then two INSERT ... SELECT
# (see contacts.dialect.pg_copy_rows and bench/reports/import.md for why).
_PG_GRANT_ROWS = "crieur_import_grants"
# One statement: subscriptions first, then a ledger row for each subscription really
# inserted (a concurrent sign-up for the same address and list wins, and is not doubled).
_PG_INSERT_GRANTS = text(
    f"""
    WITH inserted AS (
        INSERT INTO subscriptions (organisation_id, list_id, contact_id, status, source,
                                   legal_basis, is_risky, tracking_consent, created_at)
        SELECT :org_id, :list_id, t.contact_id, :status, :source, :legal_basis, :is_risky,
               false, :at
        FROM {_PG_GRANT_ROWS} AS t
        ON CONFLICT (list_id, contact_id) DO NOTHING
        RETURNING contact_id
    )
    INSERT INTO consent_events (organisation_id, contact_id, list_id, purpose, action,
                                legal_basis, source, evidence, actor_user_id,
                                import_batch_id, api_token_id, created_at)
    SELECT :org_id, t.contact_id, :list_id, :purpose, :action, :legal_basis, :source,
           CAST(t.evidence AS json), :actor_user_id, :import_batch_id, :api_token_id, :at
    FROM inserted JOIN {_PG_GRANT_ROWS} AS t ON t.contact_id = inserted.contact_id
    """
)


def _pg_bulk_grant(
    executor: Any,
    org_id: int,
    mlist: MailingList,
    grants: Sequence[tuple[int, dict[str, Any]]],
    status: str,
    source: str,
    legal_basis: str,
    risky: bool,
    at: dt.datetime,
    import_batch_id: int | None,
    actor_user_id: int | None,
    api_token_id: int | None,
) -> int:
    pg_copy_rows(
        executor,
        _PG_GRANT_ROWS,
        "contact_id integer, evidence text",
        [(contact_id, json.dumps(evidence)) for contact_id, evidence in grants],
    )
    result = executor.execute(
        _PG_INSERT_GRANTS,
        {
            "org_id": org_id,
            "list_id": mlist.id,
            "source": source,
            "legal_basis": legal_basis,
            "at": at,
            "status": str(status),
            "is_risky": risky,
            "purpose": mlist.purpose,
            "action": str(ConsentAction.GRANT),
            "actor_user_id": actor_user_id,
            "import_batch_id": import_batch_id,
            "api_token_id": api_token_id,
        },
    )
    return result.rowcount
