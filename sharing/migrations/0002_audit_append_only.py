"""Make the audit log append-only in PostgreSQL itself, not only in the ORM.

Row triggers refuse UPDATE and DELETE; TRUNCATE (used by test-database flushes and by an
operator deliberately wiping a node) is not affected. The embedded SQLite default relies on
the model's own guards.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION sharing_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER sharing_auditevent_append_only
    BEFORE UPDATE OR DELETE ON sharing_auditevent
    FOR EACH ROW EXECUTE FUNCTION sharing_auditevent_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS sharing_auditevent_append_only ON sharing_auditevent;
DROP FUNCTION IF EXISTS sharing_auditevent_append_only();
"""



def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)


class Migration(migrations.Migration):
    dependencies = [("sharing", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
