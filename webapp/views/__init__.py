"""One blueprint module per area; its name, module and URL prefix match."""

BLUEPRINT_MODULES = (
    "auth",
    "main",
    "outbox",
    "admin",
    "contacts",
    "campaigns",
    "sending",
    "analytics",
    "benchmark",
    "public",
    "tracking",
    "archive",
)
