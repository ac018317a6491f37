"""``GET /campaigns/{id}/stats``: a campaign's figures, exactly the fields of CONTRACT.md."""

from __future__ import annotations

from analytics.dashboard import contract_stats
from contacts.db import db
from webapp.api import api_roles, bp, not_found, org_id
from webapp.views.tracking import flush_quietly, state


@bp.get("/campaigns/<int:campaign_id>/stats")
@api_roles("officer", "director", "admin")
def campaign_stats(campaign_id: int):
    """The campaign's delivery and tracking figures (human opens and machines apart).
    ---
    get:
      summary: Performance figures of one campaign
      parameters:
        - {name: campaign_id, in: path, required: true, schema: {type: integer}}
      responses:
        200:
          description: the figures (the same as on the campaign's performance page)
          content:
            application/json:
              schema:
                type: object
                properties:
                  status: {type: string}
                  recipients: {type: integer}
                  sent: {type: integer}
                  deferred: {type: integer}
                  failed: {type: integer}
                  opens_unique: {type: integer, description: people who opened (human)}
                  opens_machine: {type: integer, description: recipients seen only by machines}
                  clicks_unique: {type: integer}
                  unsubscribes: {type: integer}
                  rsvp:
                    type: object
                    properties:
                      "yes": {type: integer}
                      "no": {type: integer}
                      "maybe": {type: integer}
                  poll:
                    type: object
                    additionalProperties: {type: integer}
                    description: answers per poll option (its label)
                  site_visits: {type: integer}
                  links:
                    type: array
                    items:
                      type: object
                      properties:
                        url: {type: string}
                        clicks_unique: {type: integer}
        404:
          description: no such campaign in the caller's body
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    flush_quietly()
    stats = contract_stats(db.session, org_id(), campaign_id, cache=state().reports)
    if stats is None:
        raise not_found("campagne")
    return stats
