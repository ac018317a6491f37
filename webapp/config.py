"""Configuration: the one place where ``CRIEUR_*`` environment variables are read."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"


def _int(env: dict[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from exc


def _float(env: dict[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, not {raw!r}") from exc
    return value if value > 0 else None


def secret_key(instance_path: Path) -> str:
    """The secret generated once into the instance folder, so restarts keep sessions valid."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


# Optional sending and reconciling knobs (seconds or counts); unset means the defaults
# of campaigns.sender / campaigns.scheduler, which suit production.
TUNING_KEYS = (
    "CRIEUR_SEND_BATCH_SIZE",
    "CRIEUR_SEND_LANES",
    "CRIEUR_SEND_CLAIM_SIZE",
    "CRIEUR_SEND_LEASE_SECONDS",
    "CRIEUR_SEND_OUTCOME_BATCH",
    "CRIEUR_SEND_MAX_ATTEMPTS",
    "CRIEUR_SEND_BACKOFF_SECONDS",
    "CRIEUR_SEND_BACKOFF_MAX_SECONDS",
    "CRIEUR_SEND_RELAY_BACKOFF_SECONDS",
    "CRIEUR_SEND_SLICE_SECONDS",
    "CRIEUR_SEND_STALL_SECONDS",
    "CRIEUR_RECONCILE_SECONDS",
    "CRIEUR_SCHEDULE_GRACE_SECONDS",
    "CRIEUR_IMPORT_STALL_SECONDS",
)


def from_env(instance_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the app configuration from ``CRIEUR_*`` variables (CONTRACT.md)."""
    env = dict(os.environ if env is None else env)
    public_url = env.get("CRIEUR_PUBLIC_URL", "").strip() or DEFAULT_PUBLIC_URL
    database_url = env.get("CRIEUR_DATABASE_URL", "").strip() or (
        f"sqlite:///{instance_path / 'crieur.db'}"
    )
    key = env.get("CRIEUR_SECRET_KEY", "").strip() or secret_key(instance_path)
    tuning = {key: _float(env, key) for key in TUNING_KEYS if env.get(key, "").strip()}
    for key, value in tuning.items():
        if value is None:
            raise ValueError(f"{key} must be a positive number")
        if value.is_integer():
            tuning[key] = int(value)
    return {
        **tuning,
        "CRIEUR_DATABASE_URL": database_url,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CRIEUR_BROKER_URL": env.get("CRIEUR_BROKER_URL", "").strip(),
        "CRIEUR_SMTP_URL": env.get("CRIEUR_SMTP_URL", "").strip(),
        "CRIEUR_PUBLIC_URL": public_url.rstrip("/"),
        "CRIEUR_SECRET_KEY": key,
        "SECRET_KEY": key,
        "CRIEUR_SEND_RATE": _float(env, "CRIEUR_SEND_RATE"),
        "CRIEUR_SMTP_CONNECTIONS": _int(env, "CRIEUR_SMTP_CONNECTIONS", 4),
        "SENTRY_DSN": env.get("SENTRY_DSN", "").strip(),
        "SESSION_COOKIE_SECURE": public_url.startswith("https://"),
        "REMEMBER_COOKIE_SECURE": public_url.startswith("https://"),
        "CRIEUR_IMPORT_MAX_BYTES": _int(env, "CRIEUR_IMPORT_MAX_BYTES", 50 * 1024 * 1024),
        # Reverse proxies in front of the app (X-Forwarded-For/Proto/Host trusted that deep).
        "CRIEUR_PROXIES": _int(env, "CRIEUR_PROXIES", 0),
        # Smallest number of bodies behind a published benchmark cell (never below 3).
        "CRIEUR_BENCHMARK_THRESHOLD": max(_int(env, "CRIEUR_BENCHMARK_THRESHOLD", 5) or 5, 3),
    }
