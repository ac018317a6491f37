"""The per-row report of an import: kinds of lines, their reasons, and how they are shown.

Lines are stored on the batch (``ImportBatch.rejected``: row, value, reason, kind) as the
job writes them; the API's ``rejected`` (CONTRACT) leaves out duplicates and warnings, the
downloadable report has them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contacts.i18n import N_
from contacts.importfile import RowResult
from contacts.models import ImportBatch

# Kinds of report lines; the API's "rejected" leaves out duplicates and warnings.
INVALID, DUPLICATE, SUPPRESSED, WITHDRAWN, WARNING = (
    "invalid",
    "duplicate",
    "suppressed",
    "withdrawn",
    "warning",
)
KIND_LABELS = {
    INVALID: N_("adresse invalide"),
    DUPLICATE: N_("doublon"),
    SUPPRESSED: N_("adresse bloquée"),
    WITHDRAWN: N_("désinscription"),
    WARNING: N_("importé avec remarque"),
}
# Reasons are stored on the batch as French text (data: ``ImportBatch.rejected``); these
# constant ones are marked so that a page can show them translated (an exact lookup).
SUPPRESSED_REASON = N_(
    "Adresse sur la liste d'opposition (désinscription, échec définitif ou effacement) : "
    "jamais réimportée"
)
ON_LIST_REASON = N_("Déjà inscrit sur cette liste")


def report_entry(r: RowResult, kind: str, reason: str) -> dict[str, Any]:
    """One line of the report, as stored on the batch."""
    return {"row": r.row, "value": r.value, "reason": reason, "kind": kind}


def rejected_for_api(batch: ImportBatch) -> list[dict[str, Any]]:
    """CONTRACT's ``rejected``: rows not imported for a reason other than being a duplicate."""
    return [
        {"row": e["row"], "reason": e["reason"]}
        for e in batch.rejected or []
        if e.get("kind") not in (DUPLICATE, WARNING)
    ]


REPORT_HEADER = [N_("Ligne"), N_("Valeur"), N_("Motif"), N_("Type")]


def report_rows(batch: ImportBatch) -> Iterator[list[Any]]:
    """Lines of the downloadable report (written through ``contacts.spreadsheet``)."""
    for e in batch.rejected or []:
        yield [e["row"], e.get("value", ""), e["reason"], KIND_LABELS.get(e.get("kind"), "")]
