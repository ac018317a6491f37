"""Dramatiq actors of campaigns: ids in, one service call, commit."""

from __future__ import annotations
