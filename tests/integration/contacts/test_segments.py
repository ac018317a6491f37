"""Segments: allowlisted filters become SQL over contacts; anything else is a 400."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from contacts import segments
from contacts.db import DomainError, db, utcnow
from contacts.models import Contact
from tests.factories import make_list, make_org
from tests.factories_contacts import make_contact


def _ids(org, flt) -> set[int]:
    return set(
        db.session.scalars(segments.segment_query(org.id, flt).with_only_columns(Contact.id))
    )


@pytest.fixture
def people(org):
    news = make_list(org, custom_fields=["quartier"])
    press = make_list(org, purpose="press")
    a = make_contact(org, news, fields={"quartier": "Centre-Ville"})
    b = make_contact(org, news, source="purchased", confirmed=False, fields={"quartier": "Gare"})
    c = make_contact(org, press, source="directory", status="bounced")
    c.last_activity_at = utcnow() - dt.timedelta(days=400)
    a.last_activity_at = utcnow() - dt.timedelta(days=3)
    db.session.flush()
    return {"news": news, "press": press, "a": a, "b": b, "c": c}


def test_a_list_rule_selects_its_members(org, people):
    flt = {"rules": [{"field": "list", "op": "in", "value": [people["news"].id]}]}
    assert _ids(org, flt) == {people["a"].id, people["b"].id}


def test_rules_combine_with_all_or_any(org, people):
    rules = [
        {"field": "source", "op": "in", "value": ["purchased"]},
        {"field": "status", "op": "in", "value": ["bounced"]},
    ]
    assert _ids(org, {"match": "all", "rules": rules}) == set()
    assert _ids(org, {"match": "any", "rules": rules}) == {people["b"].id, people["c"].id}


def test_a_custom_field_is_matched_without_case(org, people):
    flt = {"rules": [{"field": "field:quartier", "op": "eq", "value": "centre-ville"}]}
    assert _ids(org, flt) == {people["a"].id}
    flt = {"rules": [{"field": "field:quartier", "op": "contains", "value": "AR"}]}
    assert _ids(org, flt) == {people["b"].id}


def test_engagement_rules_use_last_activity(org, people):
    recent = {"rules": [{"field": "last_activity", "op": "within_days", "value": 30}]}
    old = {"rules": [{"field": "last_activity", "op": "older_than_days", "value": 365}]}
    assert people["a"].id in _ids(org, recent) and people["c"].id not in _ids(org, recent)
    assert _ids(org, old) == {people["c"].id}


def test_the_live_count_matches_the_query(org, people):
    flt = {"rules": [{"field": "source", "op": "not_in", "value": ["purchased"]}]}
    assert segments.count_matching(org.id, flt) == 2


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "email; DROP TABLE contacts", "op": "in", "value": ["x"]},
        {"field": "status", "op": "like", "value": ["active"]},
        {"field": "status", "op": "in", "value": ["' OR 1=1 --"]},
        {"field": "field:unknown", "op": "eq", "value": "x"},
        {"field": "last_activity", "op": "within_days", "value": "30; --"},
        {"field": "list", "op": "in", "value": [999999]},
        {"field": "status", "op": "in", "value": ["active"], "sql": "1=1"},
    ],
)
def test_unknown_fields_operators_and_values_are_refused(org, people, rule):
    with pytest.raises(DomainError) as exc:
        segments.count_matching(org.id, {"rules": [rule]})
    assert (exc.value.code, exc.value.status) == ("invalid_filter", 400)


def test_another_bodys_list_cannot_be_used_in_a_filter(org, people):
    other = make_org()
    foreign = make_list(other)
    with pytest.raises(DomainError):
        segments.validate_filter(
            org.id, {"rules": [{"field": "list", "op": "in", "value": [foreign.id]}]}
        )


def test_a_segment_counts_only_its_bodys_contacts(org, people):
    other = make_org()
    make_contact(other, make_list(other))
    assert segments.count_matching(org.id, {"rules": []}) == 3
    assert db.session.scalar(select(func.count(Contact.id))) == 4


def test_a_saved_segment_keeps_the_normalised_filter(org, people):
    seg = segments.create_segment(
        org.id, " Gare ", {"rules": [{"field": "status", "op": "in", "value": "active"}]}
    )
    assert seg.name == "Gare"
    assert seg.filter == {
        "match": "all",
        "rules": [{"field": "status", "op": "in", "value": ["active"]}],
    }
