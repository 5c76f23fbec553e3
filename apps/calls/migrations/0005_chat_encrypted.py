# Chat text encrypted at rest under the call's field key (apps.calls.chat_store).

from django.db import migrations

import apps.security.at_rest


def seal_existing(apps, schema_editor):
    """Messages written in clear before this migration are sealed now (raw SQL: the model's
    field refuses plaintext)."""
    from apps.calls import chat_store  # noqa: PLC0415 - the live key hierarchy, not a model

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, call_id, body FROM calls_chatmessage WHERE body NOT LIKE %s", ["rbf1.%"]
        )
        rows = cursor.fetchall()
        for pk, call_id, body in rows:
            cursor.execute(
                "UPDATE calls_chatmessage SET body = %s WHERE id = %s",
                [chat_store.seal(body, call_id=call_id), pk],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0004_business_type_in_accounts"),
        ("security", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seal_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="chatmessage",
            name="body",
            field=apps.security.at_rest.EncryptedTextField(),
        ),
    ]
