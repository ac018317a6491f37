"""Dramatiq actors of analytics: ids in, one service call, commit."""

from __future__ import annotations
