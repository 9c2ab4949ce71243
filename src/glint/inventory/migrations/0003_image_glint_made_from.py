from django.db import migrations, models

from glint.matrix.rows import made_from_sha256


def fill_made_from(apps, schema_editor):
    """Fill the new column from the properties already stored: a poll rewrites only images whose
    listing changed, so converted copies polled before this migration would otherwise stay out
    of their rows."""
    Image = apps.get_model("inventory", "Image")
    changed = []
    for image in Image.objects.filter(properties__has_key="glint_made_from").only("properties"):
        sha256 = made_from_sha256(str(image.properties.get("glint_made_from") or ""))
        if sha256:
            image.glint_made_from = f"sha256:{sha256}"
            changed.append(image)
    Image.objects.bulk_update(changed, ["glint_made_from"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0002_poll_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="image",
            name="glint_made_from",
            field=models.CharField(blank=True, max_length=71),
        ),
        migrations.RunPython(fill_made_from, migrations.RunPython.noop),
    ]
