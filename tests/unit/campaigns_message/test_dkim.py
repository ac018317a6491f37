"""DKIM signatures made by campaigns.dkim verify with dkimpy, the reference implementation."""

from __future__ import annotations

import re
import shutil
import subprocess

import dkim
import pytest

from campaigns.dkim import DkimError, DkimSigner, public_key_record, relaxed_body
from campaigns.message import MessageTemplate, build_simple_message, ics_attachment
from tests.services import need

DOMAIN = "mairie-evry.fr"


@pytest.fixture(scope="module")
def private_key(tmp_path_factory) -> bytes:
    need("openssl", shutil.which("openssl") is not None, "openssl generates the test key")
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def signer(private_key) -> DkimSigner:
    return DkimSigner(DOMAIN, "crieur2026", private_key)


def verifies(raw: bytes, private_key: bytes) -> bool:
    record = public_key_record(private_key).encode()

    def dnsfunc(name, timeout=5):
        assert name == b"crieur2026._domainkey.mairie-evry.fr."
        return record

    return dkim.verify(raw, dnsfunc=dnsfunc)


def campaign_message(signer: DkimSigner, **overrides) -> bytes:
    template = MessageTemplate(
        sender_email="communication@mairie-evry.fr",
        sender_name="Mairie d'Évry-Courcouronnes",
        subject="Fête de la musique : le programme",
        org_domain=DOMAIN,
        list_id="lettre.mairie-evry.fr",
        list_name="Lettre d'info",
        feedback_id="c1:o1:crieur",
        attachment=overrides.pop("attachment", None),
        dkim=signer,
    )
    args = dict(
        to_email="zoe@exemple.fr",
        to_name="Zoé Lefèvre",
        message_id=template.message_id_for(7, "u-1"),
        html="<p>Bonjour Zoé</p>",
        text="Bonjour Zoé\n",
        unsubscribe_url="https://crieur.example.fr/u/tok",
        unsubscribe_mailto="desinscription@mairie-evry.fr",
    )
    args.update(overrides)
    return template.render(**args)


def signature_tags(raw: bytes) -> dict[str, str]:
    header = raw.split(b"\r\n\r\n")[0].decode()
    value = re.match(r"DKIM-Signature: (.*?)\r\n(?! )", header, re.S).group(1)
    value = re.sub(r"\s+", "", value)
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def test_a_signed_campaign_message_verifies(signer, private_key):
    assert verifies(campaign_message(signer), private_key)


def test_the_signature_covers_the_one_click_unsubscribe_and_list_headers(signer):
    signed = signature_tags(campaign_message(signer))["h"].split(":")
    for header in (
        "from", "to", "subject", "date", "message-id", "list-unsubscribe",
        "list-unsubscribe-post", "list-id", "mime-version", "content-type",
    ):  # fmt: skip
        assert header in signed
    assert signature_tags(campaign_message(signer))["d"] == DOMAIN


def test_a_message_with_accented_names_and_a_2000_character_line_verifies(signer, private_key):
    long_line = "Ü" + "x" * 1999
    raw = campaign_message(
        signer,
        to_name="Ça ïs Ünïcödé 漢字",
        html=long_line,
        text=long_line + "\n\n   \n",
        attachment=ics_attachment(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        subject="Sujet accentué " * 10,
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert verifies(raw, private_key)


def test_a_changed_unsubscribe_header_breaks_the_signature(signer, private_key):
    raw = campaign_message(signer)
    tampered = raw.replace(b"https://crieur.example.fr/u/tok", b"https://evil.example/u/tok")
    assert not verifies(tampered, private_key)


def test_an_added_from_header_breaks_the_signature(signer, private_key):
    raw = campaign_message(signer)
    head, body = raw.split(b"\r\n\r\n", 1)
    tampered = head + b"\r\nFrom: ceo@evil.example\r\n\r\n" + body
    assert not verifies(tampered, private_key)


def test_a_changed_body_breaks_the_signature(signer, private_key):
    raw = campaign_message(signer)
    assert not verifies(raw.replace(b"Bonjour", b"Bonsoir"), private_key)


def test_a_signed_transactional_message_verifies(signer, private_key):
    raw = build_simple_message(
        sender_email="ne-pas-repondre@mairie-evry.fr",
        to_email="paul@exemple.fr",
        subject="Confirmez votre inscription",
        text="Cliquez ici.",
        dkim=signer,
    )
    assert verifies(raw, private_key)


def test_a_key_given_as_text_works_like_bytes(private_key):
    raw = build_simple_message(
        sender_email="a@mairie-evry.fr",
        to_email="b@exemple.fr",
        subject="s",
        text="t",
        dkim=DkimSigner(DOMAIN, "crieur2026", private_key.decode()),
    )
    assert verifies(raw, private_key)


def test_the_pure_python_rsa_fallback_also_verifies(private_key, monkeypatch):
    from campaigns import dkim as dkim_module

    monkeypatch.setattr(dkim_module, "_load_rsa_signer", dkim_module._dkimpy_signer)
    raw = campaign_message(DkimSigner(DOMAIN, "crieur2026", private_key))
    assert verifies(raw, private_key)


def test_an_unreadable_key_is_refused_with_a_domain_error():
    with pytest.raises(DkimError):
        DkimSigner(
            DOMAIN, "crieur2026", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"
        )


def test_a_selector_with_a_semicolon_is_refused(private_key):
    with pytest.raises(DkimError):
        DkimSigner(DOMAIN, "s; d=evil.example", private_key)


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n\r\n", b""),
        (b"a  b \t\r\nc\r\n\r\n\r\n", b"a b\r\nc\r\n"),
        (b"a ", b"a\r\n"),
        (b" x\r\n \r\n", b" x\r\n"),
    ],
)
def test_relaxed_body_canonicalisation_follows_rfc6376(body, canonical):
    assert relaxed_body(body) == canonical


def test_a_body_without_selector_or_key_gets_no_signer(private_key):
    from campaigns.dkim import signer_for

    assert signer_for(DOMAIN, "", private_key) is None
    assert signer_for(DOMAIN, "crieur2026", "") is None
    assert signer_for(DOMAIN, "crieur2026", private_key).selector == "crieur2026"
