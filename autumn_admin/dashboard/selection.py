"""The customers a bulk action (or the export) is for: the rows ticked on the list, or all that match its
filters, carried from the list through the preview to the job."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from autumn_admin.dashboard.customer_list import customer_search
from autumn_admin.dashboard.list_filters import ListFilters
from customers.models import Customer

MAX_SELECTED = 1000  # rows ticked one by one; beyond that, "all N matching these filters"


@dataclass
class Selection:
    """The customers a bulk action is for: the rows ticked on the list, or all that match its filters."""

    filters: ListFilters
    all_matching: bool
    ids: list[int]

    @classmethod
    def from_data(cls, data) -> Selection:
        ids = []
        for raw in data.getlist("ids")[:MAX_SELECTED]:
            try:
                ids.append(int(raw))
            except ValueError:
                continue
        return cls(filters=ListFilters.from_query(data), all_matching=data.get("scope") == "all", ids=ids)

    @property
    def empty(self) -> bool:
        return not self.all_matching and not self.ids

    def customers(self, env: str) -> QuerySet[Customer]:
        """All matching: the list's query now. Ticked rows: exactly those, whatever became of them (a job
        skips the deleted and other environments' ones, saying so)."""
        if self.all_matching:
            return customer_search(env, self.filters)
        return Customer.objects.filter(pk__in=self.ids)

    def describe(self) -> str:
        if self.all_matching:
            return f"all customers matching: {self.filters.describe()}"
        return f"{len(self.ids)} selected customer{'s' if len(self.ids) != 1 else ''}"

    def hidden_fields(self) -> list[tuple[str, str]]:
        """The selection as form fields, to carry from the list through the preview to the job."""
        fields = list(self.filters.query().items())
        if self.all_matching:
            fields.append(("scope", "all"))
        else:
            fields += [("ids", str(pk)) for pk in self.ids]
        return fields
