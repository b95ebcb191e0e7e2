"""What the benchmark's dataset holds, decided before a row is written: the scales, the names, domains,
resources and event values it draws from, the plans, and which customer index is the heavy, the typical, a
sandbox, a deleted or a tracked customer. Everything here is a pure function of the index and the scale, so
the generator (bench/generate.py) and the measurements (bench/run.py) agree on it without reading the
database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FIRST = [
    "ada",
    "grace",
    "alan",
    "linus",
    "margaret",
    "ken",
    "barbara",
    "dennis",
    "frances",
    "edsger",
    "radia",
    "tim",
    "hedy",
    "john",
    "katherine",
    "donald",
    "sophie",
    "guido",
    "anita",
    "bjarne",
    "joan",
    "niklaus",
    "olivia",
    "liam",
    "emma",
    "noah",
    "amelia",
    "oliver",
    "ava",
    "elijah",
    "mia",
    "lucas",
    "isabella",
    "mateo",
    "zoe",
    "kai",
    "nora",
    "leo",
    "aria",
    "ezra",
    "maya",
    "hugo",
    "ines",
    "yuki",
    "priya",
    "omar",
    "fatima",
    "chen",
    "sofia",
    "ivan",
]
LAST = [
    "lovelace",
    "hopper",
    "turing",
    "torvalds",
    "hamilton",
    "thompson",
    "liskov",
    "ritchie",
    "allen",
    "dijkstra",
    "perlman",
    "lamarr",
    "mccarthy",
    "johnson",
    "knuth",
    "wilson",
    "rossum",
    "borg",
    "stroustrup",
    "clarke",
    "wirth",
    "smith",
    "garcia",
    "martin",
    "mueller",
    "rossi",
    "dubois",
    "tanaka",
    "kim",
    "singh",
    "nguyen",
    "silva",
    "cohen",
    "novak",
    "larsen",
    "jensen",
    "petrov",
    "haddad",
    "okafor",
    "mendes",
    "schmidt",
    "moreau",
    "kowalski",
    "berg",
    "fischer",
    "lopez",
    "walker",
    "young",
    "king",
    "wright",
]
DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "fastmail.com",
    "hey.com",
    "acme.io",
    "globex.com",
    "initech.dev",
    "hooli.xyz",
    "umbrella.co",
    "stark.ai",
    "wayne.tech",
    "wonka.shop",
    "cyberdyne.net",
    "aperture.science",
    "tyrell.corp",
    "oscorp.org",
    "vandelay.biz",
]
HEAVY_RESOURCES = [
    "api_calls",
    "messages",
    "ai_credits",
    "input_tokens",
    "output_tokens",
    "storage_gb",
    "bandwidth_gb",
    "emails",
    "sms",
    "seats",
    "builds",
    "build_minutes",
    "deployments",
    "functions",
    "invocations",
    "queries",
    "rows_read",
    "rows_written",
    "images",
    "videos",
    "transcripts",
    "embeddings",
    "searches",
    "webhooks",
    "exports",
]
REGIONS = [
    '{"region": "eu-west-1"}',
    '{"region": "us-east-1"}',
    '{"region": "ap-south-1"}',
    '{"region": "eu-west-1", "model": "large"}',
    '{"region": "us-east-1", "model": "small"}',
]
TYPICAL_PROPS = ["{}", "{}", "{}", '{"endpoint": "/search"}', '{"endpoint": "/chat"}']
VALUES = ["1", "1", "1", "2", "1", "5", "1", "10", "3", "1", "0.5", "1", "25", "1", "2", "100"]

FREE, PRO, SCALE, ENTERPRISE = 0, 1, 2, 3
PLAN_NAMES = {FREE: "free", PRO: "pro", SCALE: "scale", ENTERPRISE: "enterprise"}


@dataclass(frozen=True)
class Scale:
    customers: int = 1_000_000
    events: int = 20_000_000
    heavy_events: int = 2_000_000
    heavy_invoices: int = 2_000
    heavy_balances: int = 50
    track_customers: int = 10_000
    days: int = 365
    seed: int = 7

    def check(self) -> None:
        if self.customers < 100 or self.track_customers * 5 + 10 > self.customers:
            raise SystemExit("Need at least 100 customers and 5 × track_customers of them.")
        if not 0 < self.heavy_events < self.events:
            raise SystemExit("heavy_events must be between 0 and events.")
        if not 1 <= self.heavy_balances <= 2 * len(HEAVY_RESOURCES):
            raise SystemExit(f"heavy_balances must be between 1 and {2 * len(HEAVY_RESOURCES)}.")


SCALES = {
    "full": Scale(),
    "small": Scale(customers=100_000, events=2_000_000, heavy_events=200_000, track_customers=2_000),
    "tiny": Scale(customers=1_000, events=20_000, heavy_events=5_000, heavy_invoices=60, track_customers=40),
}

# Customer index k → pk k + 1. The heavy customer is k = 0 (the oldest, live); sandbox customers are
# those with k % 5 == 0; the track targets are the sandbox customers k = 5, 10, … (on the scale plan,
# whose api_calls balance allows overage, so every tracked unit is deducted exactly).


def is_sandbox(k: int) -> bool:
    return k % 5 == 0 and k != 0


def customer_ref(k: int) -> str:
    if k == 0:
        return "org_megacorp"
    x = (k * 8_191_230_917_522_617 + 97_531) % 62**9  # a bijection: the multiplier is coprime with 62
    chars = []
    for _ in range(9):
        x, r = divmod(x, 62)
        chars.append(ALPHABET[r])
    return ("user_" if k % 5 in (1, 2, 3) else "org_") + "".join(chars)


def typical_index(scale: Scale) -> int:
    k = scale.customers // 2
    while is_sandbox(k) or k % 97 == 3:
        k += 1
    return k


def plan_of(k: int, scale: Scale, typical: int) -> int:
    if k == 0:
        return ENTERPRISE
    if k == typical:
        return PRO
    if is_sandbox(k) and k // 5 <= scale.track_customers:
        return SCALE
    h = (k * 2_654_435_761) % 1000
    return FREE if h < 700 else PRO if h < 950 else SCALE


def is_deleted(k: int, scale: Scale, typical: int) -> bool:
    return k % 97 == 3 and k != typical and not (is_sandbox(k) and k // 5 <= scale.track_customers)


def ts(dt: datetime) -> str:
    return f"{dt:%Y-%m-%d %H:%M:%S}.{dt.microsecond:06d}+00"
