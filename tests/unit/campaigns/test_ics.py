"""Events: parsing with French errors, French dates, and an .ics that parses back."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from campaigns import ics
from contacts.db import DomainError

EVENT = {
    "title": "Réunion publique",
    "starts_at": "2025-06-12T18:30",
    "ends_at": "2025-06-12T20:00:00+02:00",
    "location": "Salle des fêtes, place de la Mairie",
    "map_url": "https://www.openstreetmap.org/x",
    "rsvp_deadline": "2025-06-10T12:00:00Z",
    "capacity": "120",
}


def error_of(**changes) -> DomainError:
    with pytest.raises(DomainError) as exc:
        ics.parse_event({**EVENT, **changes})
    return exc.value


def test_naive_times_are_paris_time():
    info = ics.parse_event(EVENT)
    assert info.starts_at.utcoffset() == dt.timedelta(hours=2)
    assert info.starts_at.astimezone(dt.UTC).hour == 16
    assert info.capacity == 120


def test_end_before_start_is_refused():
    assert "fin doit être après le début" in error_of(ends_at="2025-06-12T18:00").message


def test_deadline_after_start_is_refused():
    assert error_of(rsvp_deadline="2025-06-13T00:00").details["field"] == "rsvp_deadline"


def test_unparseable_date_is_refused_in_french():
    assert "n'est pas une date valide" in error_of(starts_at="demain soir").message


def test_capacity_must_be_positive():
    assert "capacité" in error_of(capacity=0).message


def test_javascript_map_link_is_refused():
    assert error_of(map_url="javascript:alert(1)").details["field"] == "map_url"


def test_missing_event_is_refused():
    with pytest.raises(DomainError) as exc:
        ics.parse_event(None)
    assert exc.value.code == "event_required"


def test_period_is_written_in_french():
    assert ics.format_period(ics.parse_event(EVENT)) == "jeudi 12 juin 2025, de 18 h 30 à 20 h 00"
    two_days = ics.parse_event({**EVENT, "ends_at": "2025-06-13T01:00"})
    assert ics.format_period(two_days).startswith("du jeudi 12 juin 2025 à 18 h 30 au vendredi 13")


def test_ics_parses_back_with_utc_times_organizer_and_stable_uid():
    info = ics.parse_event(EVENT)
    raw = ics.build_ics(
        info,
        campaign_uid="c-1",
        organizer_name="Mairie, service com",
        organizer_email="com@ville.fr",
        description="Venez !",
    )
    cal = Calendar.from_ical(raw)
    assert str(cal["method"]) == "PUBLISH"
    event = cal.walk("VEVENT")[0]
    assert event["dtstart"].dt == dt.datetime(2025, 6, 12, 16, 30, tzinfo=dt.UTC)
    assert event["dtend"].dt == dt.datetime(2025, 6, 12, 18, 0, tzinfo=dt.UTC)
    assert str(event["location"]) == "Salle des fêtes, place de la Mairie"
    assert str(event["organizer"]) == "mailto:com@ville.fr"
    assert event["organizer"].params["CN"] == "Mairie, service com"
    assert "openstreetmap" in str(event["description"])
    again = ics.build_ics(
        info, campaign_uid="c-1", organizer_name="x", organizer_email="com@ville.fr"
    )
    assert Calendar.from_ical(again).walk("VEVENT")[0]["uid"] == event["uid"]
