"""Public pages: subscription form, double opt-in, one-click unsubscribe, preference centre."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from analytics import links
from analytics.models import TrackingEvent
from campaigns.models import Campaign, Delivery
from contacts import consent, consent_history, memberships, people, suppression
from contacts.db import db
from contacts.models import ConsentEvent, Contact, Subscription
from tests.factories import make_list, make_org
from tests.factories_contacts import make_contact, secret
from tests.integration.contacts.helpers import PUBLIC, link_in, outbox_for

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _ledger_count() -> int:
    return db.session.scalar(select(func.count(ConsentEvent.id)))


def _subscribe_path(org, lst) -> str:
    return links.subscribe_url(PUBLIC, secret(), org.id, lst.id).removeprefix(PUBLIC)


def _unsub_path(org, contact, lst, delivery_id=0) -> str:
    url = links.unsubscribe_url(PUBLIC, secret(), org.id, contact.id, lst.id, delivery_id)
    return url.removeprefix(PUBLIC)


def test_the_subscription_form_may_be_framed_by_any_site(client, org):
    lst = make_list(org, double_opt_in=True)
    db.session.commit()
    response = client.get(_subscribe_path(org, lst) + "?embed=1")
    assert response.status_code == 200
    assert "frame-ancestors *" in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers


def test_other_pages_may_not_be_framed(client, org):
    response = client.get("/auth/login")
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]


def test_subscribe_confirm_then_unsubscribe_in_one_click(client, org):
    lst = make_list(org, double_opt_in=True)
    db.session.commit()
    response = client.post(
        _subscribe_path(org, lst),
        data={"email": " Habitant@Exemple.FR ", "first_name": "Anne", "consent": "1"},
    )
    assert response.status_code == 200
    contact = people.find_contact(org.id, "habitant@exemple.fr")
    assert not memberships.is_sendable(org.id, contact.id, lst.id)
    [mail] = outbox_for("habitant@exemple.fr")
    confirm_path = link_in(mail, "/confirm/")

    assert client.get(confirm_path).status_code == 200
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "pending"
    assert client.post(confirm_path).status_code == 200
    db.session.expire_all()
    assert memberships.is_sendable(org.id, contact.id, lst.id)
    grant, confirm = consent_history.consent_history(org.id, contact.id)
    assert grant.evidence["form_url"].startswith("http")
    assert "J'accepte" in grant.evidence["wording"]
    assert confirm.action == "confirm" and confirm.evidence["confirmed_at"]

    path = _unsub_path(org, contact, lst)
    first = client.post(path, data=ONE_CLICK)
    assert first.status_code == 200 and "Location" not in first.headers
    db.session.expire_all()
    assert consent_history.consent_history(org.id, contact.id)[-1].action == "withdraw"
    assert suppression.is_suppressed(org.id, "habitant@exemple.fr", secret())
    assert not memberships.is_sendable(org.id, contact.id, lst.id)
    count = _ledger_count()
    again = client.post(path, data=ONE_CLICK)
    assert again.status_code == 200 and "Location" not in again.headers
    assert _ledger_count() == count


def test_confirming_twice_writes_one_confirmation(client, org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, confirmed=False)
    db.session.commit()
    path = links.confirm_url(PUBLIC, secret(), org.id, contact.id, lst.id).removeprefix(PUBLIC)
    client.post(path)
    client.post(path)
    actions = [e.action for e in consent_history.consent_history(org.id, contact.id)]
    assert actions == ["grant", "confirm"]


def test_one_click_accepts_a_multipart_body(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    response = client.post(
        _unsub_path(org, contact, lst), data=ONE_CLICK, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).status == "unsubscribed"


def test_a_get_of_the_unsubscribe_link_never_unsubscribes(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    count = _ledger_count()
    response = client.get(_unsub_path(org, contact, lst))
    assert response.status_code == 200
    assert 'value="One-Click"' in response.get_data(as_text=True)
    assert _ledger_count() == count
    assert memberships.is_sendable(org.id, contact.id, lst.id)


def test_a_post_without_the_one_click_body_is_refused(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    assert client.post(_unsub_path(org, contact, lst)).status_code == 400
    assert memberships.is_sendable(org.id, contact.id, lst.id)


@pytest.mark.parametrize("kind", ["forged", "other_secret", "foreign_contact", "confirm_token"])
def test_a_bad_unsubscribe_token_is_refused_and_changes_nothing(client, org, kind):
    lst = make_list(org)
    contact = make_contact(org, lst)
    other = make_org()
    stranger = make_contact(other, make_list(other))
    db.session.commit()
    token = {
        "forged": links.unsubscribe_token(secret(), org.id, contact.id, lst.id)[:-3] + "AAA",
        "other_secret": links.unsubscribe_token("another-secret", org.id, contact.id, lst.id),
        "foreign_contact": links.unsubscribe_token(secret(), org.id, stranger.id, lst.id),
        "confirm_token": links.confirm_url(PUBLIC, secret(), org.id, contact.id, lst.id).rsplit(
            "/", 1
        )[1],
    }[kind]
    count = _ledger_count()
    response = client.post(f"/u/{token}", data=ONE_CLICK)
    assert 400 <= response.status_code < 500 and "Location" not in response.headers
    assert _ledger_count() == count
    assert memberships.is_sendable(org.id, contact.id, lst.id)


def test_one_click_counts_an_anonymous_unsubscribe_for_the_campaign(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    campaign = Campaign(organisation_id=org.id, subject="Lettre de mars", list_ids=[lst.id])
    db.session.add(campaign)
    db.session.flush()
    delivery = Delivery(organisation_id=org.id, campaign_id=campaign.id, contact_id=contact.id)
    db.session.add(delivery)
    db.session.commit()
    path = _unsub_path(org, contact, lst, delivery.id)
    client.post(path, data=ONE_CLICK)
    client.post(path, data=ONE_CLICK)
    [event] = db.session.scalars(select(TrackingEvent)).all()
    assert (event.kind, event.campaign_id) == ("unsubscribe", campaign.id)
    assert event.contact_id is None and event.delivery_id is None  # aggregate policy


def test_per_contact_policy_names_the_unsubscriber_who_consented(client, org):
    org.tracking_policy = "per_contact"
    lst = make_list(org)
    contact = make_contact(org, lst, tracking_consent=True)
    campaign = Campaign(organisation_id=org.id, subject="Lettre", list_ids=[lst.id])
    db.session.add(campaign)
    db.session.flush()
    delivery = Delivery(organisation_id=org.id, campaign_id=campaign.id, contact_id=contact.id)
    db.session.add(delivery)
    db.session.commit()
    client.post(_unsub_path(org, contact, lst, delivery.id), data=ONE_CLICK)
    event = db.session.scalars(select(TrackingEvent)).one()
    assert event.contact_id == contact.id


def test_the_honeypot_stores_nothing(client, org):
    lst = make_list(org)
    db.session.commit()
    response = client.post(
        _subscribe_path(org, lst),
        data={"email": "bot@exemple.fr", "consent": "1", "site_web": "http://spam"},
    )
    assert response.status_code == 200
    assert db.session.scalar(select(func.count(Contact.id))) == 0
    assert outbox_for("bot@exemple.fr") == []


def test_an_invalid_address_is_explained_in_french(client, org):
    lst = make_list(org)
    db.session.commit()
    response = client.post(_subscribe_path(org, lst), data={"email": "pas-une-adresse"})
    assert response.status_code == 400
    assert "Adresse invalide" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Contact.id))) == 0


def test_html_in_names_is_stored_as_text_and_shown_escaped(client, org):
    lst = make_list(org, double_opt_in=False)
    db.session.commit()
    client.post(
        _subscribe_path(org, lst),
        data={"email": "x@exemple.fr", "first_name": "<script>alert(1)</script>", "consent": "1"},
    )
    contact = people.find_contact(org.id, "x@exemple.fr")
    page = client.get(
        links.preferences_url(PUBLIC, secret(), org.id, contact.id).removeprefix(PUBLIC)
    ).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_a_forged_confirmation_token_is_refused_and_changes_nothing(client, org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, confirmed=False)
    db.session.commit()
    good = links.confirm_url(PUBLIC, secret(), org.id, contact.id, lst.id).removeprefix(PUBLIC)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other = links.confirm_url(PUBLIC, "other-secret", org.id, contact.id, lst.id)
    for path in (forged, other.removeprefix(PUBLIC), "/confirm/garbage"):
        assert 400 <= client.post(path).status_code < 500
        assert 400 <= client.get(path).status_code < 500
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "pending"


def test_an_expired_confirmation_link_says_so(client, org):
    lst = make_list(org, double_opt_in=True)
    contact = make_contact(org, lst, confirmed=False)
    db.session.commit()
    old = int(time.time()) - 8 * 24 * 3600
    url = links.confirm_url(PUBLIC, secret(), org.id, contact.id, lst.id, now=old)
    response = client.post(url.removeprefix(PUBLIC))
    assert response.status_code == 410
    assert consent.get_subscription(org.id, contact.id, lst.id).status == "pending"


def test_the_preference_centre_leaves_one_list_without_suppressing(client, org):
    keep, leave = make_list(org, name="Garder"), make_list(org, name="Quitter")
    contact = make_contact(org, keep)
    consent.record_consent(org.id, contact.id, leave.id, "grant", "consent", "internal_file")
    db.session.commit()
    path = links.preferences_url(PUBLIC, secret(), org.id, contact.id).removeprefix(PUBLIC)
    assert client.get(path).status_code == 200
    response = client.post(
        path, data={"first_name": "Zoé", "last_name": "Martin", "lists": [str(keep.id)]}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert memberships.is_sendable(org.id, contact.id, keep.id)
    assert consent.get_subscription(org.id, contact.id, leave.id).status == "withdrawn"
    assert not suppression.is_suppressed(org.id, contact.email, secret())
    assert db.session.get(Contact, contact.id).first_name == "Zoé"


def test_the_preference_centre_unsubscribes_from_all(client, org):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    path = links.preferences_url(PUBLIC, secret(), org.id, contact.id).removeprefix(PUBLIC)
    assert client.post(path, data={"action": "unsubscribe_all"}).status_code == 200
    assert suppression.is_suppressed(org.id, contact.email, secret())


def test_asking_for_a_sign_in_link_answers_the_same_for_unknown_addresses(client, org):
    lst = make_list(org)
    make_contact(org, lst, email="connu@exemple.fr")
    db.session.commit()
    known = client.post(f"/p/ask/{org.slug}", data={"email": "Connu@exemple.fr"})
    unknown = client.post(f"/p/ask/{org.slug}", data={"email": "inconnu@exemple.fr"})
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    [mail] = outbox_for("connu@exemple.fr")
    assert outbox_for("inconnu@exemple.fr") == []
    signin = link_in(mail, "/p/signin/")
    assert "connu@exemple.fr" in client.get(signin).get_data(as_text=True)


def test_a_subscription_for_a_suppressed_address_needs_the_persons_confirmation(client, org):
    lst = make_list(org, double_opt_in=False)
    make_contact(org, lst, email="parti@exemple.fr", status="unsubscribed")
    db.session.commit()
    client.post(_subscribe_path(org, lst), data={"email": "parti@exemple.fr", "consent": "1"})
    contact = people.find_contact(org.id, "parti@exemple.fr")
    assert not memberships.is_sendable(org.id, contact.id, lst.id)
    [mail] = outbox_for("parti@exemple.fr")
    client.post(link_in(mail, "/confirm/"))
    db.session.expire_all()
    assert memberships.is_sendable(org.id, contact.id, lst.id)


def test_already_subscribed_people_get_the_same_answer(client, org):
    lst = make_list(org)
    make_contact(org, lst, email="deja@exemple.fr")
    db.session.commit()
    response = client.post(
        _subscribe_path(org, lst), data={"email": "deja@exemple.fr", "consent": "1"}
    )
    assert response.status_code == 200
    assert db.session.scalar(select(func.count(Subscription.id))) == 1
    assert "déjà inscrit" in outbox_for("deja@exemple.fr")[0].subject


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_the_subscription_form_is_rate_limited(client, org, app_config):
    lst = make_list(org)
    db.session.commit()
    path = _subscribe_path(org, lst)
    codes = [client.post(path, data={"email": f"r{i}@exemple.fr"}).status_code for i in range(7)]
    assert 429 in codes


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_one_click_works_cross_site_without_a_csrf_token(client, org, app_config):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    response = client.post(
        _unsub_path(org, contact, lst),
        data=ONE_CLICK,
        headers={"Origin": "https://mail.provider.example"},
    )
    assert response.status_code == 200
    assert suppression.is_suppressed(org.id, contact.email, secret())


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_the_embedded_form_posts_from_the_bodys_site(client, org, app_config):
    lst = make_list(org, double_opt_in=True)
    db.session.commit()
    response = client.post(
        _subscribe_path(org, lst) + "?embed=1",
        data={"email": "voisin@exemple.fr", "consent": "1"},
        headers={"Origin": "https://www.ville.example"},
    )
    assert response.status_code == 200
    assert people.find_contact(org.id, "voisin@exemple.fr") is not None


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_the_preference_centre_needs_its_csrf_token(client, org, app_config):
    lst = make_list(org)
    contact = make_contact(org, lst)
    db.session.commit()
    path = links.preferences_url(PUBLIC, secret(), org.id, contact.id).removeprefix(PUBLIC)
    assert client.post(path, data={"action": "unsubscribe_all"}).status_code == 403
    assert not suppression.is_suppressed(org.id, contact.email, secret())


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
def test_one_click_posts_from_one_provider_are_not_rate_limited(client, org, app_config):
    lst = make_list(org)
    contacts = [make_contact(org, lst) for _ in range(70)]
    db.session.commit()
    codes = {client.post(_unsub_path(org, c, lst), data=ONE_CLICK).status_code for c in contacts}
    assert codes == {200}
