"""Entry MACs (apps.audit.entry_mac): the new column, and the boundary of the entries written
before it, which therefore have none.

The column is added with a constant default, which PostgreSQL stores in the catalogue without
rewriting or updating a row, so the append-only triggers of 0003 stay in place and untouched.
`MacEpoch` gets its one row here, then triggers refuse any INSERT, UPDATE or DELETE of it (and
TRUNCATE, except on test databases, as in 0003).
"""

from django.db import migrations, models
from django.db.models import Max

TABLE = "audit_macepoch"


def record_boundary(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    MacEpoch = apps.get_model("audit", "MacEpoch")
    db = schema_editor.connection.alias
    last = AuditEvent.objects.using(db).aggregate(last=Max("seq"))["last"] or 0
    MacEpoch.objects.using(db).create(id=1, legacy_until=last)
    if schema_editor.connection.vendor != "postgresql":
        return
    # audit_refuse_change() comes from 0003: it refuses every operation it is attached to.
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_frozen BEFORE INSERT OR UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
    )
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
    )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_frozen ON {TABLE}")
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_actor_type_labels")]

    operations = [
        migrations.CreateModel(
            name="MacEpoch",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("legacy_until", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="auditevent",
            name="entry_mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(record_boundary, drop_triggers, elidable=False),
    ]
