# The calls' business types now live in accounts (state only: same table, same column).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0003_collaboration'),
        ('accounts', '0003_businesstype_moved_from_banking'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='call',
                    name='business_type',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='accounts.businesstype'),
                ),
                migrations.AlterField(
                    model_name='entryticket',
                    name='business_type',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='accounts.businesstype'),
                ),
            ],
            database_operations=[],
        ),
    ]
