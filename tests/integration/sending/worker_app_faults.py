"""``worker_app`` with a fault hook: die between the relay's 250 and the commit of it.

With ``CRIEUR_TEST_KILL_AFTER_250=N`` the N-th message the relay accepts in this process
is followed at once, before the sender can record its outcome, by a SIGKILL of the
worker's whole process group (the fault tests start workers in their own session). The
accepted address is written first to ``CRIEUR_TEST_FAULT_FILE``, so the test knows whom
the crash left in the window RFC 1047 describes.
"""

import itertools
import os
import signal
import threading
from pathlib import Path

from campaigns import sender
from campaigns.smtp import Outcome
from tests.integration.sending.worker_app import app  # noqa: F401 - what dramatiq loads

_KILL_AFTER = int(os.environ.get("CRIEUR_TEST_KILL_AFTER_250") or 0)
_FAULT_FILE = os.environ.get("CRIEUR_TEST_FAULT_FILE", "")


class KillAfter250:
    """Wraps the body's transport; SIGKILLs the process group after the N-th 250."""

    _count = itertools.count(1)
    _lock = threading.Lock()

    def __init__(self, transport) -> None:
        self.transport = transport

    def send(self, sender_, recipients, raw):
        result = self.transport.send(sender_, recipients, raw)
        if result.outcome is Outcome.SENT:
            with self._lock:
                n = next(self._count)
                if n == _KILL_AFTER:
                    Path(_FAULT_FILE).write_text(recipients[0])
                    os.killpg(os.getpgrp(), signal.SIGKILL)
        return result

    def close(self) -> None:
        self.transport.close()


if _KILL_AFTER:
    _real_transport_for = sender.transport_for

    def _transport_for(org, default_url, connections=4):
        return KillAfter250(_real_transport_for(org, default_url, connections))

    sender.transport_for = _transport_for
