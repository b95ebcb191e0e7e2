"""Create the groups Ops, Support and Viewer with their permissions."""

from django.db import migrations

VIEW = [
    ("customers", "view_customer"), ("customers", "view_auditentry"),
    ("billing", "view_feature"), ("billing", "view_product"), ("billing", "view_productitem"),
    ("billing", "view_price"), ("billing", "view_customerproduct"), ("billing", "view_balance"),
    ("billing", "view_event"), ("billing", "view_reward"), ("billing", "view_customerreward"),
    ("billing", "view_invoice"),
]
SUPPORT = VIEW + [("billing", "adjust_balance")]
OPS = SUPPORT + [
    ("customers", "change_customer"), ("customers", "delete_customer"), ("customers", "restore_customer"),
    ("customers", "manage_api_keys"), ("customers", "view_apikey"),
    ("billing", "apply_reward"), ("billing", "add_customerreward"), ("billing", "change_customerreward"),
    ("billing", "add_customerproduct"), ("billing", "change_customerproduct"), ("billing", "add_product"),
]
ROLES = {"Ops": OPS, "Support": SUPPORT, "Viewer": VIEW}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrations run; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    assign_roles(apps)


def assign_roles(apps):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [Permission.objects.get(content_type__app_label=app, codename=code) for app, code in perms]
        group.permissions.set(wanted)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
