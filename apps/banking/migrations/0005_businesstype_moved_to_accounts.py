# BusinessType moved to accounts (state only: accounts.0004 renames the table).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('banking', '0004_identity_frame'),
        ('calls', '0004_business_type_in_accounts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='BusinessType')],
            database_operations=[],
        ),
    ]
