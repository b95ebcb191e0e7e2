"""The dashboard's authentication backend: Django's ModelBackend, loading the user and the user's role in one
query.

Every dashboard request reads the logged-in user and checks a permission (the login middleware asks for
`customers.view_customer`, templates for each control). ModelBackend reads the user, then the user's own
permissions, then the permissions of the user's groups: three queries. Here the two permission sets come
back as two columns of the user's row, filled into the same caches ModelBackend keeps on the user, so
`has_perm` reads them without another query. They are read on every request, never stored between
requests: a change of role (group membership, a group's permissions, `is_active`) shows on the next request.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models.expressions import RawSQL

SEPARATOR = " "  # app labels and codenames have no spaces


@cache
def _permission_columns() -> tuple[str, str]:
    """SQL of the user's own permissions and of the user's groups' permissions, as 'app_label.codename' lists."""
    User = get_user_model()
    user, pk = User._meta.db_table, User._meta.pk.column
    perm, ct = Permission._meta.db_table, ContentType._meta.db_table
    user_perms = User._meta.get_field("user_permissions").remote_field.through._meta.db_table
    user_groups = User._meta.get_field("groups").remote_field.through._meta.db_table
    group_perms = Group._meta.get_field("permissions").remote_field.through._meta.db_table
    name = f"string_agg(ct.app_label || '.' || p.codename, '{SEPARATOR}')"  # the rows' names in one text
    own = (
        f"SELECT {name} FROM {perm} p JOIN {ct} ct ON ct.id = p.content_type_id "
        f"JOIN {user_perms} up ON up.permission_id = p.id WHERE up.user_id = {user}.{pk}"
    )
    of_groups = (
        f"SELECT {name} FROM {perm} p JOIN {ct} ct ON ct.id = p.content_type_id "
        f"JOIN {group_perms} gp ON gp.permission_id = p.id "
        f"JOIN {user_groups} ug ON ug.group_id = gp.group_id WHERE ug.user_id = {user}.{pk}"
    )
    return own, of_groups


def _names(joined: str | None) -> set[str]:
    return set(joined.split(SEPARATOR)) if joined else set()


class RoleBackend(ModelBackend):
    """ModelBackend whose `get_user` also loads the user's permissions (one query instead of three)."""

    def get_user(self, user_id):
        User = get_user_model()
        own, of_groups = _permission_columns()
        # A slice, not .first(): its ORDER BY pk would sort the one row, and costs Django more to compile than
        # the rest of the query (it hashes both subqueries' expressions).
        found = User._default_manager.annotate(_own_perms=RawSQL(own, []), _group_perms=RawSQL(of_groups, [])).filter(
            pk=user_id
        )[:1]
        user = next(iter(found), None)
        if user is None or not self.user_can_authenticate(user):
            return None
        if not user.is_superuser:  # a superuser holds every permission: ModelBackend reads them when asked
            user._user_perm_cache = _names(user._own_perms)
            user._group_perm_cache = _names(user._group_perms)
        return user
