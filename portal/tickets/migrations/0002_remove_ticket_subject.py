# The subject is what the end user typed: report content, which lives only in
# report.json in the tenant's storage. The vendor's database no longer holds it.
# (Dropping a column need not scrub the old values from the database's files:
# see CHANGELOG.md for the VACUUM that does.)

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0001_initial'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='ticket',
            name='subject',
        ),
    ]
