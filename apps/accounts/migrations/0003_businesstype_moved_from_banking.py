# BusinessType moves beside Skill (it belongs to routing, below banking). State only here: the
# table stays banking_businesstype until 0004 renames it, after calls and banking let go of it.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_customer_identity_staff_auth'),
        ('banking', '0004_identity_frame'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='BusinessType',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('code', models.SlugField(max_length=48, unique=True)),
                        ('name_zh', models.CharField(max_length=64, verbose_name='名称')),
                        ('name_en', models.CharField(max_length=96, verbose_name='英文名称')),
                        ('requires_recording', models.BooleanField(default=True)),
                        ('active', models.BooleanField(default=True)),
                        ('skill', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='business_types', to='accounts.skill')),
                    ],
                    options={
                        'verbose_name': '业务类型',
                        'verbose_name_plural': '业务类型',
                        'ordering': ['code'],
                        'db_table': 'banking_businesstype',
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
