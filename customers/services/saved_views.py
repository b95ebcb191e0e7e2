"""Saved views of the customers list: a name for a set of filters, one's own or shared with the team."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction

from customers.errors import Conflict, ServiceError
from customers.models import Env, SavedView

MAX_VIEWS = 50


def saved_view_create(*, owner: AbstractBaseUser, env: str, name: str, query: str, shared: bool) -> SavedView:
    name = (name or "").strip()
    if not name or len(name) > 80 or "\x00" in name:
        raise ServiceError("Give the view a name of 1 to 80 characters.", code="invalid_input", field="name")
    if env not in Env.values or len(query) > 2000 or "\x00" in query:
        raise ServiceError("These filters can't be saved.", code="invalid_input", field="query")
    if SavedView.objects.filter(owner=owner).count() >= MAX_VIEWS:
        raise ServiceError(f"You have {MAX_VIEWS} saved views: delete one first.", code="invalid_input", field="name")
    try:
        with transaction.atomic():
            return SavedView.objects.create(owner=owner, env=env, name=name, query=query, shared=shared)
    except IntegrityError:
        raise Conflict(f"You already have a view named {name!r}.", code="view_exists", field="name")


def saved_view_delete(*, view: SavedView) -> None:
    view.delete()
