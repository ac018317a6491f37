"""The import wizard's column choices, to and from a mapping (no file, no database)."""

from __future__ import annotations

import pytest

from contacts.column_mapping import mapping_choices, mapping_from_choices
from contacts.importfile import ColumnMapping, ImportFileError


def test_a_guessed_mapping_becomes_one_choice_per_column():
    mapping = ColumnMapping(email=1, first_name=0, last_name=None, fields={"commune": 3})

    assert mapping_choices(mapping, 5) == ["first_name", "email", "", "field:commune", ""]


def test_the_choices_made_in_the_wizard_become_a_mapping_with_list_field_keys():
    mapping = mapping_from_choices(["last_name", "email", "new:Code Postal", "", "first_name"])

    assert mapping == ColumnMapping(email=1, first_name=4, last_name=0, fields={"code_postal": 2})


def test_two_email_columns_are_refused():
    with pytest.raises(ImportFileError) as exc:
        mapping_from_choices(["email", "email"])

    assert exc.value.code == "invalid_mapping"


def test_choices_without_an_email_column_are_refused():
    with pytest.raises(ImportFileError) as exc:
        mapping_from_choices(["first_name", ""])

    assert exc.value.code == "no_email_column"
