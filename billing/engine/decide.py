"""decide: the rules on balances, as plain Python over the rows `load` read — no database access.

Everything a track or a check does to balances is decided here: which balances a use draws from and in
which order (the feature's own, then the credit systems that list it, at their cost), what a refund gives
back, overage and its caps, expired grants, resets that are due, what a check answers, and which events a
track records. `store` writes what this returns; nothing else decides a change of a balance by usage.
Tested case by case in tests/test_engine_decide.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from billing.credits import credits_for
from billing.intervals import next_after
from billing.models import Balance, Feature, FeatureType, Price
from billing.quantities import MAX_ABS, ZERO, overage

__all__ = ["overage"]  # billing.quantities' (the rule decide reports)


@dataclass
class Rows:
    """What `load` read for one request: the features asked about, the credit systems each falls through
    to (in order, with the cost of one unit there), and the customer's balances of all of them (id order,
    each with its `feature` set): for a request naming an entity (`entity_named`), that entity's own balances
    and the customer-level ones; else every balance, every entity's included."""

    features: list[Feature]
    pools: dict[int, list[tuple[Feature, Decimal]]] = field(default_factory=dict)
    balances: list[Balance] = field(default_factory=list)
    customer_due: bool = False  # is any balance of the customer due for a reset (read by a check)?
    prices: dict[int, Price | None] = field(default_factory=dict)  # each balance's usage price (by pk)
    entity_named: bool = False


# --- resets and order ---------------------------------------------------------------------------


def snapshot(balance: Balance) -> dict:
    """A balance as an audit entry shows it."""
    return {
        "feature": balance.feature.feature_id,
        "remaining": balance.remaining,
        "granted": balance.granted,
        "usage": balance.usage,
        "next_reset_at": balance.next_reset_at,
        **({"expires_at": balance.expires_at} if balance.expires_at else {}),
    }


@dataclass
class Reset:
    """A reset decided for a balance that was due: it and its snapshots before and after."""

    balance: Balance
    before: dict
    after: dict


def reset_due(balance: Balance, now: datetime) -> Reset | None:
    """Reset `balance` if its reset time has passed: back to its allowance, adjustments dropped, the next
    reset one interval on (past `now`). Changes the instance only."""
    if not balance.is_due(now):
        return None
    before = snapshot(balance)
    balance.remaining = balance.allowance
    balance.adjustment = ZERO
    balance.next_reset_at = next_after(balance.next_reset_at, balance.interval, balance.interval_count, now)
    return Reset(balance=balance, before=before, after=snapshot(balance))


def is_live(balance: Balance, now: datetime) -> bool:
    """Not expired: an expired grant is gone from every read and write (its events stay)."""
    return balance.expires_at is None or balance.expires_at > now


def entity_group(balance: Balance, entity_named: bool) -> bool:
    """Which side of Autumn's entity rule a balance is on: False (drawn first, and given back first) for an
    entity's own balance when the request names the entity, and for a customer-level one when it names none."""
    return (balance.entity_id is None) if entity_named else (balance.entity_id is not None)


def draw_order(balances, *, entity_named: bool = False) -> list[Balance]:
    """The order a track draws balances of one feature down (README, balance rules): first the one whose
    remainder would be lost soonest (the earlier of its next reset and its expiry), those that never reset
    or expire last, and the older first among equals. A refund gives usage back in the reverse order.

    Entities first (Autumn's sortCusEntsForDeduction): a request naming an entity draws that entity's own
    balances before the customer-level ones; one naming none, the customer-level ones before the entities'."""
    return sorted(
        balances,
        key=lambda b: (
            entity_group(b, entity_named),
            b.lost_at() is None,
            b.lost_at() or b.created_at,
            b.pk,
        ),
    )


# --- a feature's total and the check ------------------------------------------------------------


@dataclass
class FeatureBalance:
    """All of a customer's balances of one feature, added up (what check and the API report)."""

    feature: Feature
    granted: Decimal = ZERO
    remaining: Decimal = ZERO
    unlimited: bool = False
    overage_allowed: bool = False
    usage_limit: Decimal | None = None
    next_reset_at: datetime | None = None
    balances: list[Balance] = field(default_factory=list)

    @property
    def usage(self) -> Decimal:
        return self.granted - self.remaining

    @classmethod
    def of(cls, feature: Feature, balances: list[Balance]) -> FeatureBalance:
        fb = cls(feature=feature, balances=balances)
        for b in balances:
            fb.granted += b.granted
            fb.remaining += b.remaining
            fb.unlimited = fb.unlimited or b.unlimited
            fb.overage_allowed = fb.overage_allowed or b.overage_allowed
            if b.usage_limit is not None:
                fb.usage_limit = (fb.usage_limit or ZERO) + b.usage_limit
            if b.next_reset_at and (fb.next_reset_at is None or b.next_reset_at < fb.next_reset_at):
                fb.next_reset_at = b.next_reset_at
        return fb


@dataclass
class CheckResult:
    allowed: bool
    balance: FeatureBalance | None
    # The feature whose balance answered (the checked one, or a credit system that lists it), and the
    # quantity checked in its units (required × the credit cost when a credit system answered).
    answered_by: Feature | None = None
    required: Decimal | None = None
    # Every balance the check looked at, by feature: the checked feature's and its credit systems'.
    balances: dict[Feature, FeatureBalance] = field(default_factory=dict)


def covers(fb: FeatureBalance, required: Decimal) -> bool:
    """Does this feature's balance allow a use of `required` of it now?"""
    if fb.feature.type == FeatureType.BOOLEAN or fb.unlimited:
        return True
    if fb.overage_allowed:
        return fb.usage_limit is None or fb.usage + required <= fb.usage_limit
    return fb.remaining >= required


def grouped(rows: Rows, now: datetime) -> dict[Feature, list[Balance]]:
    """The live balances of every feature the rows name (asked about, then their pools), in draw order."""
    features = {f.pk: f for f in rows.features}
    for lines in rows.pools.values():
        for system, _cost in lines:
            features.setdefault(system.pk, system)
    held: dict[int, list[Balance]] = {pk: [] for pk in features}
    for b in rows.balances:
        if b.feature_id in held and is_live(b, now):
            held[b.feature_id].append(b)
    return {features[pk]: draw_order(group, entity_named=rows.entity_named) for pk, group in held.items()}


def decide_check(rows: Rows, feature: Feature, required: Decimal, now: datetime) -> CheckResult:
    """May the customer use `required` of `feature` now (resets already decided)?

    Autumn's order: the feature's own balance answers when it covers the use; otherwise the first credit
    system listing the feature whose pool covers `required × cost` answers; otherwise the first such pool
    the customer has (not allowed), else the feature's own balance (not allowed)."""
    found = {f: FeatureBalance.of(f, group) for f, group in grouped(rows, now).items() if group}
    own = found.get(feature)
    if own is not None and covers(own, required):
        return CheckResult(True, own, answered_by=feature, required=required, balances=found)
    lines = rows.pools.get(feature.pk, [])
    pools = [(found[system], credits_for(required, cost)) for system, cost in lines if system in found]
    for fb, credits in pools:
        if covers(fb, credits):
            return CheckResult(True, fb, answered_by=fb.feature, required=credits, balances=found)
    if pools:
        fb, credits = pools[0]
        return CheckResult(False, fb, answered_by=fb.feature, required=credits, balances=found)
    return CheckResult(False, own, answered_by=feature, required=required, balances=found)


# --- the track ----------------------------------------------------------------------------------


@dataclass
class Draw:
    """A balance a track may draw from, and what one unit of the tracked feature costs there: 1 on a
    balance of the feature itself, the schema's credit cost on a credit system's balance."""

    balance: Balance
    cost: Decimal = Decimal(1)
    own: bool = True  # a balance of the tracked feature itself (else a credit system's)
    taken: Decimal = ZERO
    reached: bool = False  # did the track come to it (with something left to draw or give back)?
    later: bool = False  # on the later side of the entity rule (`entity_group`): drawn and given back last

    def take(self, amount: Decimal) -> None:
        self.balance.remaining -= amount
        self.taken += amount


def draw(draws: list[Draw], value: Decimal) -> Decimal:
    """Draw `value` units of a feature from its draws in order: the feature's own balances first (in the
    draw order), then the credit systems that list it, at their cost (Autumn's order). Returns what the
    feature's event records: the full value of a use, and of a refund only what it gave back.

    Positive remainders are used first, across all of them; what is left goes negative on the first that
    allows overage (up to its usage limit), and is otherwise dropped: without overage a balance stops at
    0 while the event keeps the full value. An unlimited balance of the feature itself takes everything
    and changes nothing; an unlimited pool takes whatever reaches it. What is still to draw is kept as an
    exact fraction of a unit, so a pool at 0.3 credits a unit that covers part of a use leaves the rest
    exactly; each amount taken is a whole number of millionths (`credits_for`).

    A refund never gives back more than was used (Autumn's `calculateDeduction` caps it at the balance's
    ceiling): what it could not give back was never used, so the event records only what it gave, and
    the events of a balance sum to its usage."""
    own_unlimited = [d for d in draws if d.balance.unlimited and d.own]
    if own_unlimited:
        own_unlimited[0].taken = value
        return value
    if value < 0:
        # A refund gives usage back to the feature's own balances first, in the reverse draw order, then to
        # the credit systems (Autumn's order: credits another feature used stay used while its own has any);
        # the entity rule's first side first (Autumn reverses only the order by reset time).
        rest = Fraction(-value)
        own = sorted((d for d in reversed(draws) if d.own), key=lambda d: d.later)
        for d in own + [d for d in reversed(draws) if not d.own]:
            d.reached = True
            if d.balance.unlimited:
                continue
            need = credits_for(rest, d.cost)
            give = min(need, d.balance.usage)
            if give > 0:
                d.take(-give)
                rest = Fraction(0) if give == need else rest - Fraction(give) / Fraction(d.cost)
            if rest == 0:
                return value
        return -credits_for(Fraction(-value) - rest, Decimal(1))
    rest = Fraction(value)
    for d in draws:
        d.reached = True
        need = credits_for(rest, d.cost)
        if d.balance.unlimited:
            d.taken += need
            return value
        take = min(need, max(d.balance.remaining, ZERO))
        if take > 0:
            d.take(take)
            rest = Fraction(0) if take == need else rest - Fraction(take) / Fraction(d.cost)
        if rest == 0:
            return value
    for d in draws:
        b = d.balance
        if b.overage_allowed:
            d.reached = True
            floor = b.granted - b.usage_limit if b.usage_limit is not None else -MAX_ABS
            # Overage stops at the usage limit, and at the largest quantity kept (-10^15): the event
            # still records the full value, as a balance without overage stops at 0.
            d.take(b.remaining - max(b.remaining - credits_for(rest, d.cost), floor, -MAX_ABS))
            return value
    return value


@dataclass
class Deduction:
    """What one track took from one balance, in that balance's units (credits for a credit system's)."""

    balance: Balance
    value: Decimal


@dataclass
class Recorded:
    """An event a track records: of `feature`, `value` (in its units); `drawn_for`: for a credit system's
    event, the index (in the decision's events) of the use it paid for."""

    feature: Feature
    value: Decimal
    drawn_for: int | None = None


@dataclass
class Decision:
    """What a request changes and answers: the balances to write (with the resets among them), the
    events to record, and what the answer reports."""

    resets: list[Reset] = field(default_factory=list)
    changed: list[Balance] = field(default_factory=list)
    events: list[Recorded] = field(default_factory=list)
    # The first feature's balances after the track; every feature the track reached (the tracked ones,
    # then the credit systems it fell through to) with its balances; what it took from each balance.
    balances: list[Balance] = field(default_factory=list)
    reached: dict[Feature, list[Balance]] = field(default_factory=dict)
    deductions: list[Deduction] = field(default_factory=list)
    check: CheckResult | None = None

    @property
    def writes(self) -> bool:
        return bool(self.changed or self.events)


def decide_resets(rows: Rows, now: datetime) -> Decision:
    """Bring the rows current: every balance due for a reset is reset (the caller writes them)."""
    # An expired grant is left as it is: nothing draws from it any more, and nothing resets it.
    resets = [r for r in (reset_due(b, now) for b in rows.balances if is_live(b, now)) if r is not None]
    return Decision(resets=resets, changed=[r.balance for r in resets])


def decide_track(rows: Rows, value: Decimal, now: datetime, decision: Decision | None = None) -> Decision:
    """Record a use (or, negative, a refund) of `value` of each of the rows' features: resets due first,
    then each feature's draws — its own balances in draw order, then each credit system at its cost —
    an event per feature, and an event per credit system drawn (its value in credits, `drawn_for` the
    feature's event)."""
    decision = decision or decide_resets(rows, now)
    stored = {b.pk: (b.remaining, b.adjustment, b.next_reset_at) for b in rows.balances}
    by_feature = grouped(rows, now)
    came_to: set[Feature] = set()
    for feature in rows.features:
        draws = [Draw(balance=b, later=entity_group(b, rows.entity_named)) for b in by_feature[feature]]
        for system, cost in rows.pools.get(feature.pk, []):
            draws += [Draw(balance=b, cost=cost, own=False) for b in by_feature[system]]
        index = len(decision.events)
        decision.events.append(Recorded(feature=feature, value=draw(draws, value)))
        decision.deductions += [Deduction(balance=d.balance, value=d.taken) for d in draws if d.taken]
        came_to.update(d.balance.feature for d in draws if d.reached and not d.own)
        drawn: dict[int, tuple[Feature, Decimal]] = {}
        for d in draws:
            if not d.own and d.taken:
                system, credits = drawn.get(d.balance.feature_id, (d.balance.feature, ZERO))
                drawn[d.balance.feature_id] = (system, credits + d.taken)
        decision.events += [Recorded(feature=s, value=credits, drawn_for=index) for s, credits in drawn.values()]
    first = rows.features[0]
    changed = {b.pk: b for b in decision.changed}
    for b in rows.balances:
        # The tracked feature's balances are written even when unchanged (their updated_at moves).
        if (b.remaining, b.adjustment, b.next_reset_at) != stored[b.pk] or (
            b.feature_id == first.pk and is_live(b, now)
        ):
            changed[b.pk] = b
    decision.changed = sorted(changed.values(), key=lambda b: b.pk)
    decision.balances = by_feature[first]
    decision.reached = {f: by_feature[f] for f in rows.features}
    for system in sorted(came_to, key=lambda f: f.pk):
        decision.reached.setdefault(system, by_feature[system])
    return decision


def decide_check_and_track(rows: Rows, feature: Feature, required: Decimal, now: datetime) -> Decision:
    """A check that also tracks (send_event): the check's answer, and when allowed (and not a flag) a
    track of `required` of the feature."""
    decision = decide_resets(rows, now)
    decision.check = decide_check(rows, feature, required, now)
    if decision.check.allowed and feature.type != FeatureType.BOOLEAN:
        decision = decide_track(rows, required, now, decision)
    return decision
