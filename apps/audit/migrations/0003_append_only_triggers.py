"""PostgreSQL: refuse UPDATE, DELETE and TRUNCATE on the audit log and its checkpoints.

Triggers stop the application (and anyone with its credentials short of the table owner or a
superuser) from rewriting history; the hash chain, the signed checkpoints and the checkpoint
file outside the database are what detect the rest. For stronger separation, have a migration
role own the tables and grant the application role only SELECT and INSERT on them.

Django's test runner empties tables with TRUNCATE between transactional tests, so on a test
database (Django's test environment is set up and the name is the test name) the migration
sets `remotebank.audit_allow_truncate = on` for that database only. `verify_evidence` warns if
that setting is ever on where it runs.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_checkpoint")

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('remotebank.audit_allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def _is_test_database(connection):
    from django.core import mail
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX

    name = connection.settings_dict["NAME"] or ""
    test_name = (connection.settings_dict.get("TEST") or {}).get("NAME")
    # mail.outbox exists only inside Django's test environment (setup_test_environment).
    return hasattr(mail, "outbox") and (name == test_name or name.startswith(TEST_DATABASE_PREFIX))


def install(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)  # no placeholders: RAISE uses %
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
    if _is_test_database(connection):
        name = schema_editor.quote_name(connection.settings_dict["NAME"])
        schema_editor.execute(f"ALTER DATABASE {name} SET remotebank.audit_allow_truncate = 'on'")
        schema_editor.execute("SET remotebank.audit_allow_truncate = 'on'")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_checkpoint")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
