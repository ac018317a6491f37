"""Keep Dramatiq's stub broker usable after a test whose worker stopped holding messages.

A stub worker that is stopped while it holds messages (a retry or a quota wait delayed
for minutes) never acknowledges them, so their queue keeps counting them as unfinished
and every later ``broker.join()`` of the session would wait forever.
"""

from __future__ import annotations


def release_held_messages(broker) -> int:
    """Flush ``broker`` and forget the messages taken but never acked; how many there were."""
    broker.flush_all()
    held = 0
    for queue in list(broker.queues.values()):  # the delay queues are in there too
        with queue.all_tasks_done:
            held += queue.unfinished_tasks
            queue.unfinished_tasks = 0
            queue.all_tasks_done.notify_all()
    return held
