"""CSV and XLSX files of the Statistiques reports, safe to open in a spreadsheet.

Every table of the campaign page and of the body's dashboard becomes a sheet (XLSX, all
sheets in one workbook) or a file (CSV, one table at a time). Column titles are French,
values raw (rates as fractions, dates in UTC), and every cell goes through
``contacts.spreadsheet``: text that a spreadsheet would run as a formula (a link label
``=HYPERLINK(…)``, a hostile ``utm_campaign``) is written with a leading ``'``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from contacts.spreadsheet import dataframe_to_csv_bytes, safe_cell

__all__ = ["campaign_sheets", "csv_bytes", "dashboard_sheets", "xlsx_bytes"]

# XML 1.0 forbids these control characters; sheet titles forbid []:*?/\\.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XLSX_TITLE = re.compile(r"[\[\]:*?/\\]")

SUMMARY_FIELDS = (
    "recipients",
    "sent",
    "failed",
    "deferred",
    "opens_unique",
    "opens_machine",
    "clicks_unique",
    "clicks_total",
    "unsubscribes",
    "site_visits",
    "open_rate",
    "click_rate",
    "click_to_open",
    "unsubscribe_rate",
    "bounce_rate",
)


def _naive_utc(series: pd.Series) -> pd.Series:
    s = pd.to_datetime(series, utc=True)
    return s.dt.tz_convert("UTC").dt.tz_localize(None)


def campaign_sheets(page: Any) -> dict[str, pd.DataFrame]:
    """The campaign report's tables: ``resume``, ``liens``, ``chronologie``, ``appareils``,
    ``clients``, ``rsvp``, ``sondage`` and, when the policy allows it, ``participants``."""
    stats = page.stats
    summary = []
    for name in SUMMARY_FIELDS:
        comp = page.comparison.get(name, {})
        summary.append(
            {
                "indicateur": name,
                "valeur": stats.get(name),
                "mediane_organisme": comp.get("median"),
                "campagnes_comparees": comp.get("campaigns"),
            }
        )
    sheets: dict[str, pd.DataFrame] = {"resume": pd.DataFrame(summary)}
    sheets["liens"] = pd.DataFrame(
        [
            {
                "ordre": h["number"],
                "url": h["url"],
                "libelle": h["label"],
                "clics_uniques": h["clicks_unique"],
                "clics_total": h["clicks_total"],
                "part": h["share"],
            }
            for h in page.heat
        ],
        columns=["ordre", "url", "libelle", "clics_uniques", "clics_total", "part"],
    )
    tl = page.report.timeline.copy()
    timeline = pd.DataFrame(
        {
            "heure": tl["hour"].astype("int64"),
            "debut_utc": _naive_utc(tl["at"]) if tl["at"].notna().all() else tl["at"],
            "ouvertures": tl["opens"].astype("int64"),
            "clics": tl["clicks"].astype("int64"),
        }
    )
    sheets["chronologie"] = timeline
    sheets["appareils"] = page.report.devices.rename(
        columns={"device_class": "appareil", "count": "personnes", "share": "part"}
    )
    sheets["clients"] = page.report.clients.rename(
        columns={"client_family": "logiciel", "count": "personnes", "share": "part"}
    )
    rsvp = stats["rsvp"]
    sheets["rsvp"] = pd.DataFrame(
        [{"reponse": k, "nombre": int(v)} for k, v in rsvp.items()], columns=["reponse", "nombre"]
    )
    sheets["sondage"] = pd.DataFrame(
        [{"option": r["option"], "nombre": r["count"], "part": r["share"]} for r in page.poll_rows],
        columns=["option", "nombre", "part"],
    )
    if page.attendees is not None:
        sheets["participants"] = pd.DataFrame(
            [
                {
                    "prenom": a["first_name"],
                    "nom": a["last_name"],
                    "email": a["email"],
                    "repondu_le_utc": a["answered_at"],
                }
                for a in page.attendees
            ],
            columns=["prenom", "nom", "email", "repondu_le_utc"],
        )
    return sheets


def dashboard_sheets(board: Any) -> dict[str, pd.DataFrame]:
    """The dashboard's tables: ``campagnes``, ``croissance``, ``sources``, ``objets``, ``site``."""
    summaries = board.summaries.copy()
    if len(summaries):
        summaries["started_at"] = _naive_utc(summaries["started_at"])
    campaigns = summaries.rename(
        columns={
            "campaign_id": "campagne",
            "name": "nom",
            "subject": "objet",
            "started_at": "envoyee_le_utc",
            "recipients": "destinataires",
            "delivered": "delivres",
            "opens_unique": "ouvertures",
            "clicks_unique": "clics",
            "unsubscribes": "desinscriptions",
            "open_rate": "taux_ouverture",
            "click_rate": "taux_clic",
            "click_to_open": "clics_sur_ouvertures",
            "unsubscribe_rate": "taux_desinscription",
        }
    )
    growth = board.growth.rename(
        columns={"month": "mois", "gains": "arrivees", "losses": "departs", "net": "solde"}
    )
    sources = pd.DataFrame(
        [
            {"source": s["source"], "abonnements": s["count"], "part": s["share"],
             "a_risque": s["risky"]}
            for s in board.sources
        ],
        columns=["source", "abonnements", "part", "a_risque"],
    )  # fmt: skip
    subjects = pd.DataFrame(board.best_subjects).rename(
        columns={"campaign_id": "campagne", "subject": "objet", "delivered": "delivres",
                 "open_rate": "taux_ouverture"}
    )  # fmt: skip
    site = board.traffic.rename(
        columns={
            "day": "jour",
            "page_views": "pages_vues",
            "visits": "visites",
            "visitors": "visiteurs_du_jour",
            "campaign_visits": "visites_depuis_campagnes",
        }
    )
    return {
        "campagnes": campaigns,
        "croissance": growth,
        "sources": sources,
        "objets": subjects,
        "site": site,
    }


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """One table as CSV for French Excel (``;``, UTF-8 with BOM), formula-safe."""
    return dataframe_to_csv_bytes(frame)


def _xlsx_value(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)  # Excel has no time zones
    if isinstance(value, bool | int | str | dt.date | dt.time):
        return value
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return str(value)


def xlsx_bytes(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """Every table as one sheet of one workbook, formula-safe (text cells stay text)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    for name, frame in sheets.items():
        ws = wb.create_sheet(title=_XLSX_TITLE.sub(" ", name)[:31] or "Export")

        def cells(values: Any, ws: Any = ws) -> list[Any]:
            out = []
            for raw in values:
                value = _xlsx_value(raw)
                if isinstance(value, str):
                    cell = WriteOnlyCell(ws, value=safe_cell(_XLSX_ILLEGAL.sub("", value)))
                    cell.data_type = "s"  # text, never a formula, whatever it starts with
                    out.append(cell)
                else:
                    out.append(value)
            return out

        ws.append(cells([str(c) for c in frame.columns]))
        for row in frame.itertuples(index=False, name=None):
            ws.append(cells(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
