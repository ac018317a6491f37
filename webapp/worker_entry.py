"""What ``crieur worker`` hands to Dramatiq: every actor, bound to one configured app."""

from webapp import create_app

app = create_app()
