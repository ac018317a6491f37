from __future__ import annotations

import pytest

from contacts import emails
from contacts.emails import (
    InvalidEmail,
    clean_email_text,
    hash_email,
    normalise_email,
    to_ascii_email,
    translate_reason,
    validate_email,
)


def reason_for(value: str) -> str:
    with pytest.raises(InvalidEmail) as exc:
        validate_email(clean_email_text(value))
    return exc.value.reason


def test_addresses_are_lowercased_entirely():
    assert validate_email("Jean.Dupont@Mairie-Exemple.FR") == "jean.dupont@mairie-exemple.fr"


def test_surrounding_and_non_breaking_spaces_are_removed():
    assert clean_email_text("\u00a0 jean@mairie.fr\t\u200b") == "jean@mairie.fr"


@pytest.mark.parametrize(
    "typed",
    [
        "mailto:jean@mairie.fr",
        "MAILTO: jean@mairie.fr",
        "Jean Dupont <jean@mairie.fr>",
        "<jean@mairie.fr>",
    ],
)
def test_mailto_prefix_and_display_name_are_removed(typed):
    assert clean_email_text(typed) == "jean@mairie.fr"


def test_internationalised_domain_is_accepted_in_unicode_form():
    assert validate_email("zoe@exämple.fr") == "zoe@exämple.fr"


def test_punycode_and_unicode_domains_normalise_alike():
    assert validate_email("Zoe@xn--exmple-cua.fr") == validate_email("zoe@EXÄMPLE.fr")


def test_address_over_254_characters_is_rejected_with_its_length():
    assert (
        reason_for("a" * 250 + "@mairie.fr")
        == "Adresse trop longue (260 caractères, 254 au maximum)"
    )


def test_empty_address_is_reported_as_missing():
    assert reason_for("   ") == "Adresse e-mail manquante"


def test_missing_at_sign_is_explained_in_french():
    assert reason_for("jean.mairie.fr") == "Adresse invalide : il manque le signe @"


def test_space_inside_an_address_is_explained():
    assert reason_for("jean dupont@mairie.fr") == "Adresse invalide : elle contient une espace"


def test_two_addresses_in_one_cell_are_refused():
    assert "Plusieurs adresses" in reason_for("a@mairie.fr; b@mairie.fr")


def test_reserved_domain_is_refused():
    assert "réservé" in reason_for("jean@serveur.local")


def test_domain_without_a_dot_is_explained():
    assert "nom de domaine" in reason_for("jean@mairie")


def test_two_dots_in_a_row_are_explained():
    assert reason_for("jean..dupont@mairie.fr") == "Adresse invalide : deux points se suivent"


def test_unknown_validator_message_falls_back_to_a_generic_reason():
    assert translate_reason("Something new in a later version.") == "Adresse invalide"


def test_reason_keeps_the_validator_message_for_logs():
    with pytest.raises(InvalidEmail) as exc:
        validate_email("jean@mairie")
    assert "period" in exc.value.detail


def test_deliverability_is_not_checked_by_default(monkeypatch):
    seen = {}
    real = emails.email_validator.validate_email

    def spy(value, **kwargs):
        seen.update(kwargs)
        return real(value, **kwargs)

    monkeypatch.setattr(emails.email_validator, "validate_email", spy)
    validate_email("jean@domaine-sans-dns-crieur.fr")
    assert seen["check_deliverability"] is False


def test_normalise_email_of_a_valid_address_equals_validation():
    assert normalise_email(" Zoe@XN--EXMPLE-CUA.FR ") == validate_email("zoe@exämple.fr")


def test_normalise_email_of_an_invalid_address_still_lowercases():
    assert normalise_email(" Pas Une Adresse ") == "pas une adresse"


def test_hash_is_the_same_for_case_space_and_punycode_variants():
    salt = b"sel-de-la-commune"
    assert hash_email(" Zoe@xn--exmple-cua.fr", salt) == hash_email("zoe@EXÄMPLE.fr", salt)


def test_hash_depends_on_the_salt():
    assert hash_email("jean@mairie.fr", "a") != hash_email("jean@mairie.fr", "b")


def test_hash_is_64_hex_characters():
    value = hash_email("jean@mairie.fr", "sel")
    assert len(value) == 64 and int(value, 16) >= 0


def test_hash_refuses_an_empty_salt():
    with pytest.raises(ValueError):
        hash_email("jean@mairie.fr", b"")


def test_to_ascii_email_gives_the_idna_domain():
    assert to_ascii_email("zoe@exämple.fr") == "zoe@xn--exmple-cua.fr"
