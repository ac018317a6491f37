"""The consent ledger, its projection and derived sendability, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contacts import consent, consent_bulk, consent_history, memberships, people, suppression
from contacts.db import DomainError, db
from contacts.models import ConsentEvent, Contact, Subscription
from tests.factories import make_list, make_org
from tests.factories_contacts import make_contact, secret


def test_a_web_form_grant_on_a_double_opt_in_list_waits_for_confirmation(org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, confirmed=False)
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "pending"
    assert not memberships.is_sendable(org.id, contact.id, lst.id)
    consent.confirm_subscription(org.id, contact.id, lst.id, secret())
    assert memberships.is_sendable(org.id, contact.id, lst.id)


@pytest.mark.parametrize("source", ["exchanged", "purchased", "unknown"])
def test_risky_sources_are_not_sendable_until_the_person_confirms(org, source):
    lst = make_list(org, double_opt_in=False)
    contact = make_contact(org, lst, source=source, confirmed=False)
    sub = consent.get_subscription(org.id, contact.id, lst.id)
    assert (sub.status, sub.is_risky) == ("pending", True)
    assert not memberships.is_sendable(org.id, contact.id, lst.id)
    consent.confirm_subscription(org.id, contact.id, lst.id, secret())
    assert memberships.is_sendable(org.id, contact.id, lst.id)
    assert consent.get_subscription(org.id, contact.id, lst.id).is_risky  # still flagged


def test_an_internal_file_grant_is_sendable_at_once(org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, source="internal_file", confirmed=False)
    assert memberships.is_sendable(org.id, contact.id, lst.id)


def test_a_risky_grant_cannot_be_laundered_by_a_later_internal_file(org):
    lst = make_list(org)
    contact = make_contact(org, lst, source="purchased", confirmed=False)
    consent.record_consent(org.id, contact.id, lst.id, "grant", "consent", "internal_file")
    assert not memberships.is_sendable(org.id, contact.id, lst.id)


def test_every_change_appends_to_the_ledger(org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst)
    consent.record_consent(org.id, contact.id, lst.id, "withdraw", evidence={"method": "test"})
    actions = [e.action for e in consent_history.consent_history(org.id, contact.id)]
    assert actions == ["grant", "confirm", "withdraw"]
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "withdrawn"


def test_a_ledger_row_cannot_be_updated(org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    entry = consent_history.consent_history(org.id, contact.id)[0]
    entry.source = "purchased"
    with pytest.raises(DomainError):
        db.session.flush()
    db.session.rollback()


def test_a_ledger_row_cannot_be_deleted(org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.delete(consent_history.consent_history(org.id, contact.id)[0])
    with pytest.raises(DomainError):
        db.session.flush()
    db.session.rollback()


def test_an_officer_grant_cannot_override_a_withdrawal(org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    consent.record_consent(org.id, contact.id, lst.id, "withdraw")
    with pytest.raises(DomainError) as exc:
        consent.record_consent(org.id, contact.id, lst.id, "grant", "consent", "internal_file")
    assert exc.value.code == "withdrawn"


def test_the_person_may_subscribe_again_after_a_withdrawal(org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst)
    consent.record_consent(org.id, contact.id, lst.id, "withdraw")
    consent.record_consent(org.id, contact.id, lst.id, "grant", "consent", "web_form")
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "pending"


def test_withdraw_all_suppresses_and_is_idempotent(org):
    lst1, lst2 = make_list(org), make_list(org)
    contact = make_contact(org, lst1)
    consent.record_consent(org.id, contact.id, lst2.id, "grant", "public_task", "directory")
    assert consent.withdraw_all(org.id, contact.id, secret(), method="test") == 2
    assert consent.withdraw_all(org.id, contact.id, secret(), method="test") == 0
    assert suppression.is_suppressed(org.id, contact.email.upper(), secret())
    assert contact.status == "unsubscribed"
    assert not memberships.is_sendable(org.id, contact.id, lst1.id)


def test_a_suppressed_address_is_created_suppressed(org):
    suppression.suppress(org.id, "Marie@Exemple.fr ", "bounced", secret())
    contact = people.create_contact(org.id, "marie@exemple.fr", secret=secret())
    assert contact.status == "bounced"


def test_a_grant_for_a_suppressed_contact_stays_pending_until_confirmed(org):
    lst = make_list(org, double_opt_in=False)
    contact = make_contact(org, status="unsubscribed")
    consent.record_consent(org.id, contact.id, lst.id, "grant", "consent", "internal_file")
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "pending"
    consent.confirm_subscription(org.id, contact.id, lst.id, secret())
    assert memberships.is_sendable(org.id, contact.id, lst.id)
    assert not suppression.is_suppressed(org.id, contact.email, secret())


def test_suppression_hashes_differ_between_bodies(org):
    other = make_org()
    assert suppression.email_hash(org.id, "a@b.fr", "s") != suppression.email_hash(
        other.id, "a@b.fr", "s"
    )


def test_suppression_keeps_no_address_in_clear(org):
    suppression.suppress(org.id, "secret.person@exemple.fr", "unsubscribed", secret())
    row = db.session.scalars(select(Suppression_)).first()
    assert "exemple" not in row.email_hash and len(row.email_hash) == 64


Suppression_ = suppression.Suppression


def test_sendable_contact_ids_lists_each_contact_once(org):
    lst1, lst2 = make_list(org), make_list(org)
    both = make_contact(org, lst1)
    consent.record_consent(org.id, both.id, lst2.id, "grant", "consent", "internal_file")
    risky = make_contact(org, lst1, source="purchased", confirmed=False)
    gone = make_contact(org, lst2, status="bounced")
    ids = list(db.session.scalars(memberships.sendable_contact_ids(org.id, [lst1.id, lst2.id])))
    assert ids == [both.id]
    assert risky.id not in ids and gone.id not in ids


def test_a_tracking_choice_is_recorded_in_the_ledger(org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    consent.record_tracking_consent(org.id, contact.id, True, {"form": "prefs"})
    assert consent.get_subscription(org.id, contact.id, lst.id).tracking_consent
    assert consent.record_tracking_consent(org.id, contact.id, True) is None
    last = consent_history.consent_history(org.id, contact.id)[-1]
    assert (last.purpose, last.action, last.list_id) == ("tracking", "grant", None)


def test_another_bodys_list_is_not_found(org):
    other = make_org()
    foreign = make_list(other)
    contact = make_contact(org)
    with pytest.raises(DomainError) as exc:
        consent.record_consent(org.id, contact.id, foreign.id, "grant", "consent", "web_form")
    assert exc.value.status == 404
    assert db.session.scalar(select(Subscription.id)) is None


def test_update_contact_ignores_status_and_organisation(org):
    other = make_org()
    contact = make_contact(org, status="bounced")
    people.update_contact(
        org.id,
        contact.id,
        {"first_name": " <b>Zoé</b> ", "status": "active", "organisation_id": other.id},
    )
    fresh = db.session.get(Contact, contact.id)
    assert (fresh.first_name, fresh.status, fresh.organisation_id) == (
        "<b>Zoé</b>",
        "bounced",
        org.id,
    )


def test_find_contact_matches_any_case_and_spacing(org):
    contact = make_contact(org, email="Jean.Dupont@Mairie.fr")
    assert people.find_contact(org.id, "  JEAN.dupont@mairie.FR ") == contact
    assert db.session.scalar(select(ConsentEvent.id)) is None


def test_bulk_grant_leaves_a_subscription_made_meanwhile_alone(org):
    lst = make_list(org)
    already = make_contact(org, lst)
    fresh = make_contact(org)
    count = consent_bulk.bulk_grant(
        org.id,
        lst,
        [(already.id, {"row": 2}), (fresh.id, {"row": 3})],
        source="internal_file",
        legal_basis="consent",
    )
    assert count == 1
    assert [e.action for e in consent_history.consent_history(org.id, already.id)] == ["grant"]
    assert consent_history.consent_history(org.id, fresh.id)[0].evidence == {"row": 3}
    assert memberships.is_sendable(org.id, fresh.id, lst.id)
