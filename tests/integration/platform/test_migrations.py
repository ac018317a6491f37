"""One set of Alembic scripts builds the whole schema on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, inspect, text

from contacts.db import db


def _drop_everything():
    db.session.remove()
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            found = MetaData()
            found.reflect(conn)
            found.drop_all(conn)  # in dependency order: SQLite enforces foreign keys here


@pytest.fixture
def empty_db(app):
    _drop_everything()
    yield
    _drop_everything()
    db.create_all()


def test_upgrade_from_empty_matches_the_models(app, empty_db):
    upgrade()
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, db.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_to_base_and_up_again(app, empty_db):
    upgrade()
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert "deliveries" in inspect(db.engine).get_table_names()
