"""Processes starting together on a fresh instance folder all compile the catalogues."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from babel.messages.mofile import read_mo

from webapp.i18n import compile_catalogues


def _compile(target: str, start) -> None:
    start.wait()
    compile_catalogues(Path(target))


def test_four_processes_compiling_at_once_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for trial in range(3):
        target = tmp_path / f"fresh-{trial}"
        start = ctx.Event()
        procs = [ctx.Process(target=_compile, args=(str(target), start)) for _ in range(4)]
        for proc in procs:
            proc.start()
        start.set()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
        mo = target / "en" / "LC_MESSAGES" / "messages.mo"
        with mo.open("rb") as fh:
            assert read_mo(fh).get("Contacts") is not None
        assert not list(target.rglob("*.tmp"))
