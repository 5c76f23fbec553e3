"""Two database roles: the owner, which owns the tables and runs migrations, and the application
role (DATABASE_URL's user), which only reads and writes rows.

The application role owns nothing, so it cannot alter, disable or drop a trigger, nor TRUNCATE;
on the tables whose changes the audit triggers refuse it may only SELECT and INSERT. With
DATABASE_OWNER_URL unset there is one role and nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

# The parts of a connection's settings that say who connects (DATABASE_OWNER_URL's database
# must be DATABASE_URL's: settings check that).
CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")

# Tables carrying a trigger of audit_refuse_change() (apps/audit/migrations/0003, 0005) and
# whether it refuses INSERT too (tgtype bit 2: TRIGGER_TYPE_INSERT).
REFUSING_TRIGGERS = """
SELECT c.relname, bool_or(t.tgtype & 4 <> 0)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE p.proname = 'audit_refuse_change' AND c.relnamespace = current_schema()::regnamespace
GROUP BY c.relname
"""


@contextmanager
def as_owner(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Within the block, `using` connects as the owner role (to the database it names now,
    which in tests is the test database). For management commands and test set-up: the
    settings are shared by every thread's connection."""
    owner = settings.DATABASE_OWNER
    if owner is None:
        yield
        return
    connection = connections[using]
    saved = {key: connection.settings_dict[key] for key in CREDENTIALS}
    _reconnect_as(using, {key: owner[key] for key in CREDENTIALS})
    try:
        yield
    finally:
        _reconnect_as(using, saved)


def _reconnect_as(using: str, credentials: dict[str, Any]) -> None:
    connection = connections[using]
    connection.close()  # the next query connects with the new credentials
    connection.settings_dict.update(credentials)


def grant_application_rights(using: str = DEFAULT_DB_ALIAS, **_: Any) -> None:
    """post_migrate: the application role's rights on every table, new ones included. Run as
    the owner (migrate and flush connect as it)."""
    role = settings.DATABASE_APPLICATION_ROLE
    connection = connections[using]
    if settings.DATABASE_OWNER is None or connection.vendor != "postgresql" or not role:
        return
    if role == connection.settings_dict["USER"]:
        return  # one role after all: it owns what it uses
    role = connection.ops.quote_name(role)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(REFUSING_TRIGGERS)
        refusing = cursor.fetchall()
        # Revoked first: no TRUNCATE, REFERENCES or TRIGGER, whoever granted them.
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        for table, refuses_insert in refusing:
            rights = "INSERT, UPDATE, DELETE" if refuses_insert else "UPDATE, DELETE"
            table = connection.ops.quote_name(table)
            cursor.execute(f"REVOKE {rights} ON {schema}.{table} FROM {role}")
