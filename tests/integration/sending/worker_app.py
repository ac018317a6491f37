"""What the fault tests run with ``python -m dramatiq``: the real app, with test tuning.

Same as ``webapp.worker_entry`` (every actor bound to one configured app) plus the
``CRIEUR_SEND_*`` tuning keys read from ``CRIEUR_TEST_OVERRIDES`` (JSON), so a killed
worker's leases expire in seconds instead of fifteen minutes.
"""

import json
import os

from webapp import create_app

app = create_app(json.loads(os.environ.get("CRIEUR_TEST_OVERRIDES", "{}")) or None)
