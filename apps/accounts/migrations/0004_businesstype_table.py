# The table takes its owner's name now that nothing in banking's state refers to it.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_businesstype_moved_from_banking'),
        ('banking', '0005_businesstype_moved_to_accounts'),
    ]

    operations = [
        migrations.AlterModelTable(name='businesstype', table=None),
    ]
