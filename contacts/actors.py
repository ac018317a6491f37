"""Dramatiq actors of contacts: ids in, one service call, commit."""

from __future__ import annotations
