"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and
every one of them can be undone: a model change without its migration (or the reverse) fails here,
not on an operator's `flask db upgrade`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from companion.checkins.store import CheckInDetails, submit_checkin
from companion.extensions import db
from companion.models import Alert


def schema_differences() -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(context, db.metadata))


def test_the_migrated_schema_is_the_models_schema(app: Flask) -> None:
    assert schema_differences() == []


@pytest.mark.postgres
def test_the_migrated_schema_is_the_models_schema_on_postgresql(app: Flask) -> None:
    assert schema_differences() == []


def test_every_migration_can_be_undone_and_done_again(app: Flask) -> None:
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert schema_differences() == []


def test_a_database_error_never_carries_the_statements_values(app: Flask) -> None:
    """Error texts end up in logs: a failed INSERT must not copy a note or a name into them."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError) as failed:
        db.session.execute(
            text("INSERT INTO clinic (id, name) VALUES (:id, :name)"),
            {"id": None, "name": "Rosalind's chest pain note"},
        )
    db.session.rollback()
    assert "Rosalind" not in str(failed.value)
    assert "hidden due to hide_parameters" in str(failed.value)


def test_red_alerts_raised_before_the_upgrade_are_not_escalated_after_it(
    app: Flask, make_clinic, make_visit, now
) -> None:
    """Escalation (issue 12) starts with new alerts: an old open red alert must not reach the
    on-call contact days late at the first worker round after the upgrade."""
    visit = make_visit(make_clinic(), performed_at=now - timedelta(hours=26)).visit
    details = CheckInDetails(uuid.uuid4(), now, 2, None, ["breathless"], [], None)
    submit_checkin(visit, details, now=now)
    db.session.commit()
    db.session.remove()

    downgrade(revision="4d2f7c1e9a10")
    upgrade()

    alert = db.session.scalars(select(Alert)).one()
    assert alert.level == "red" and alert.acknowledged_at is None
    assert alert.escalated_at == alert.raised_at == now
