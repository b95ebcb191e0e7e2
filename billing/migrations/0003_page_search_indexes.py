"""Trigram indexes so the customers list searches a million customers fast.

Django's `icontains` on PostgreSQL is `UPPER("col"::text) LIKE UPPER('%q%')`: each index is on
exactly that expression.
"""

from django.db import migrations, transaction

SEARCHED = ("customer_id", "name", "email", "fingerprint")


def create(apps, schema_editor):
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # no privilege to add the extension: search stays correct, only slower
        print(f"\n  Skipping customer search indexes: pg_trgm unavailable ({exc}).")
        return
    for column in SEARCHED:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS customer_{column}_trgm ON customers_customer '
            f'USING gin (UPPER("{column}"::text) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    for column in SEARCHED:
        schema_editor.execute(f"DROP INDEX IF EXISTS customer_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_roles"),
        ("customers", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
