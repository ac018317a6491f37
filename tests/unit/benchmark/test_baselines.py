"""Baselines: the shipped 2010 table and later editions loaded from CSV."""

from __future__ import annotations

import pytest

from analytics.benchmark.baselines import baselines_frame, load_baseline_csv, shipped_baseline
from contacts.db import DomainError

META = {"code": "2030", "title": "Étude 2030", "year": 2030, "source": "Association, 2030"}


def refused(data, **meta) -> DomainError:
    with pytest.raises(DomainError) as caught:
        load_baseline_csv(data, **{**META, **meta})
    assert caught.value.code == "baseline_invalid"
    return caught.value


def test_the_shipped_table_holds_the_figures_of_the_2010_study():
    values = shipped_baseline().values()
    assert len(values) == 27
    assert values["risk_exchange_contacts"] == 39
    assert values["collect_directories"] == 13.5
    assert values["obstacle_inbox_saturation"] == 90


def test_the_shipped_table_states_its_source():
    table = shipped_baseline()
    assert table.year == 2010
    assert "OTeN" in table.source and "a-brest" in table.source


def test_the_shipped_table_keeps_the_qualifiers_of_the_text():
    assert shipped_baseline().row("practice_mobile_optimisation").qualifier == "upper_bound"
    assert shipped_baseline().row("measure_click_rate").qualifier == "approx"


def test_a_semicolon_windows_1252_file_with_decimal_commas_loads():
    data = "indicator;theme;label_fr;value_pct\nuse_newsletters;usage;Lettres d'été;80,5\n"
    table = load_baseline_csv(data.encode("cp1252"), **META)
    assert table.values() == {"use_newsletters": 80.5}
    assert table.rows[0].label_fr == "Lettres d'été"


def test_a_utf8_file_with_a_byte_order_mark_loads():
    data = (
        "\ufeffindicator,theme,label_fr,value_pct,qualifier\nuse_surveys,usage,Enquêtes,41,approx\n"
    )
    table = load_baseline_csv(data.encode("utf-8"), **META)
    assert table.row("use_surveys").qualifier == "approx"


def test_a_missing_column_is_named():
    assert "value_pct" in refused("indicator,theme,label_fr\nx,y,z\n").message


def test_a_value_out_of_range_names_its_line():
    error = refused("indicator,theme,label_fr,value_pct\na,t,A,10\nb,t,B,140\n")
    assert "Ligne 3" in error.message and "140" in error.message


def test_a_duplicate_indicator_names_both_lines():
    error = refused("indicator,theme,label_fr,value_pct\na,t,A,10\na,t,A,11\n")
    assert "Ligne 3" in error.message and "ligne 2" in error.message


def test_an_unknown_qualifier_is_refused():
    assert (
        "qualificatif"
        in refused("indicator,theme,label_fr,value_pct,qualifier\na,t,A,1,vague\n").message
    )


def test_an_empty_file_is_refused():
    assert "vide" in refused(b"").message


def test_an_edition_without_a_source_is_refused():
    assert "source" in refused("indicator,theme,label_fr,value_pct\na,t,A,1\n", source=" ").message


def test_an_indicator_unknown_to_the_survey_is_kept_with_a_warning():
    table = load_baseline_csv(
        "indicator,theme,label_fr,value_pct\nnew_thing,t,Nouveau,12\n",
        **META,
        known_indicators={"use_newsletters"},
    )
    assert table.values() == {"new_thing": 12}
    assert "new_thing" in table.warnings[0]


def test_editions_line_up_in_one_long_frame():
    later = load_baseline_csv(
        "indicator,theme,label_fr,value_pct\nuse_newsletters,usage,L,80\n", **META
    )
    frame = baselines_frame([shipped_baseline(), later])
    news = frame[frame["indicator"] == "use_newsletters"]
    assert news[["edition", "value_pct"]].values.tolist() == [["2010", 67.0], ["2030", 80.0]]
