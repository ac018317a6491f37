"""Delivery rows, the truth about who gets a campaign: the steps of a send, and their statuses.

The queue only says which rows to look at; these rows say what happened (RELIABILITY.md,
"the queue is a hint, the database is the truth"):

1. **Freeze** (:func:`campaigns.sending.start_sending`): in one transaction, the campaign
   moves ``approved → sending`` by a conditional UPDATE (:func:`campaigns.workflow.transition`)
   and ``INSERT … SELECT … ON CONFLICT DO NOTHING`` (:func:`campaigns.audience.freeze_audience`)
   creates one ``queued`` row per sendable contact of its lists
   (``UNIQUE(campaign_id, contact_id)`` deduplicates across lists and segments). A double
   click or two schedulers: the second UPDATE changes nothing and fails.
2. **Claim** (:func:`campaigns.claims.claim_rows`): ``UPDATE … SET status='sending',
   lease_until=now()+L, attempts=attempts+1 WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
   RETURNING`` on PostgreSQL, the same under ``BEGIN IMMEDIATE`` on SQLite. Only ``queued``
   or due ``deferred`` rows are claimed, so a redelivered queue message claims nothing.
3. **In-flight window** (:func:`campaigns.outcomes.mark_in_flight`): before a row may reach
   the relay it is flagged ``possible_duplicate`` in a committed transaction; the flag is
   put back to its old value when the outcome commits. After a crash the rows still flagged
   are exactly those that may have been accepted without our knowing, so the reconciler
   re-sends every expired row but only these are listed as possible duplicates.
4. **Outcomes** (:func:`campaigns.outcomes.write_outcomes`): ``sent``, ``deferred``
   (+ backoff), ``failed``, ``unknown``, ``skipped``, committed by the sender in small groups
   right after the relay's answers (see :mod:`campaigns.sender` for the trade-off).

Where the rest lives: who a campaign goes to and who is left out (:mod:`campaigns.audience`),
the database clock (:mod:`campaigns.dbclock`), start/schedule/pause/resume/cancel/finish
(:mod:`campaigns.sending`), counts, rate and ETA of a send (:mod:`campaigns.progress`).
This module keeps only what every step shares: the table and its status groups.
"""

from __future__ import annotations

from campaigns.models import Delivery, DeliveryStatus

D = DeliveryStatus
T = Delivery.__table__

CLAIMABLE = (D.QUEUED, D.DEFERRED)
UNFINISHED = (D.QUEUED, D.DEFERRED, D.SENDING)
FINAL = (D.SENT, D.FAILED, D.UNKNOWN, D.CANCELLED, D.SKIPPED)
