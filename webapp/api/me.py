"""``GET /me``: who the token belongs to."""

from __future__ import annotations

from flask import g

from contacts.db import db
from contacts.models import Organisation
from webapp.api import bp


@bp.get("/me")
def me():
    """The caller, their role and their body.
    ---
    get:
      summary: The token's user, role and organisation (with its site_key)
      responses:
        200:
          description: the caller
          content:
            application/json:
              schema:
                type: object
                properties:
                  user: {type: object}
                  role: {type: string, enum: [officer, director, admin, analyst]}
                  organisation: {type: object, nullable: true}
        401:
          description: missing or bad token
    """
    user = g.api_user
    org = db.session.get(Organisation, user.organisation_id) if user.organisation_id else None
    return {
        "user": {"id": user.id, "email": user.email, "name": user.name},
        "role": user.role,
        "organisation": None
        if org is None
        else {
            "id": org.id,
            "name": org.name,
            "slug": org.slug,
            "kind": org.kind,
            "region": org.region,
            "population": org.population,
            "site_key": org.site_key,
            "tracking_policy": org.tracking_policy,
        },
    }
