"""``GET /benchmark/export``: the anonymised sector export, for the association's analysts."""

from __future__ import annotations

from flask import Response, current_app, g, request

from analytics.benchmark import service, services
from analytics.benchmark.anonymise import Policy
from contacts.db import db
from webapp.api import ApiError, api_roles, bp

API_FORMATS = ("json", "csv", "xlsx")


@bp.get("/benchmark/export")
@api_roles("analyst")
def benchmark_export():
    """The anonymised benchmark export of an edition.
    ---
    get:
      summary: Anonymised sector export (analysts only)
      description: >
        Aggregates only: no body name or id, no contact data, no free-text answer. Every
        published cell is built from at least the configured number of bodies (5 by
        default, never below 3), with no body above 85 % of a cell; smaller or dominated
        cells, and those that would reveal them by difference, are marked secret. Each
        export is recorded so that a later one cannot be differenced against it.
      parameters:
        - name: format
          in: query
          required: false
          schema: {type: string, enum: [json, csv, xlsx], default: json}
        - name: edition
          in: query
          required: false
          description: edition code; the most recent edition when omitted
          schema: {type: string}
      responses:
        200:
          description: the export (JSON with metadata, columns and cells; CSV; or XLSX)
          content:
            application/json:
              schema:
                type: object
                properties:
                  metadata: {type: object}
                  columns: {type: array, items: {type: string}}
                  cells: {type: array, items: {type: object}}
            text/csv:
              schema: {type: string}
        400:
          description: unknown format, or no answer to export yet
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
        403:
          description: the caller is not an analyst
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
        404:
          description: unknown edition
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    fmt = request.args.get("format", "json")
    if fmt not in API_FORMATS:
        raise ApiError("export_format", "Format d'export inconnu : choisissez json, csv ou xlsx.")
    code = request.args.get("edition", "").strip()
    edition = services.get_edition_by_code(code) if code else service.latest_edition()
    if edition is None:
        raise ApiError("not_found", "Édition introuvable.", status=404)
    policy = Policy(k=int(current_app.config.get("CRIEUR_BENCHMARK_THRESHOLD", 5)))
    result = service.export_edition(edition.id, fmt, policy=policy, user_id=g.api_user.id)
    db.session.commit()  # the release is stored before the bytes leave
    return Response(
        result.data,
        content_type=result.content_type,
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"'},
    )
