"""after: the one seam every balance request passes through with what was decided, inside its
transaction, after `store` wrote it. The home of the reactions to a change of a balance (usage limits,
usage alerts, auto top-ups, which later issues add here); today it adds nothing."""

from __future__ import annotations

from billing.engine.decide import Decision
from customers.audit import Actor
from customers.models import Customer


def after(*, customer: Customer, decision: Decision, actor: Actor) -> None:
    """React to `decision`, written for `customer` by `actor`. Nothing reacts yet."""
    return None
