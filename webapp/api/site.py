"""``GET /site``: the website counter snippet of the caller's body."""

from __future__ import annotations

from flask import current_app

from analytics.snippet import snippet_html
from contacts.db import db
from contacts.models import Organisation
from webapp.api import bp, not_found, org_id


@bp.get("/site")
def site():
    """The HTML to paste into the body's website (cookieless visit counter).
    ---
    get:
      summary: The website snippet (script and no-script pixel) of the caller's body
      responses:
        200:
          description: the snippet
          content:
            application/json:
              schema:
                type: object
                properties:
                  snippet_html: {type: string}
        403:
          description: analysts have no body
    """
    org = db.session.get(Organisation, org_id())
    if org is None:
        raise not_found("organisme")
    return {"snippet_html": snippet_html(current_app.config["CRIEUR_PUBLIC_URL"], org.site_key)}
