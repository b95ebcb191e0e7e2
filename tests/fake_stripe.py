"""A small stand-in for the Stripe API, served on 127.0.0.1 for the real `stripe` library to talk to.

It keeps customers, coupons, checkout sessions, invoices and subscriptions in memory, answers in
Stripe's shapes (lists with `has_more`, `{"error": {...}}` bodies, 404 `resource_missing`, 400 on
unknown parameters), honours Idempotency-Key like Stripe (a replayed key returns the first answer;
the same key with other parameters is refused), and records every request it receives with its
form-encoded body decoded, so a test can assert what was sent.

Like Stripe, one server holds both modes of the account, told apart by the API key: the fake a test
gets serves test mode (`API_KEY`), and `fake.live_mode()` adds live mode (`LIVE_API_KEY`) on the same
server, with stores, ids ("…_live…") and a request record of its own. A request whose key is neither
is recorded by, and refused (401) from, the first.

A test can queue an error answer or a delay for the next request(s):
`fake.queue_error(500)` answers without doing anything; `fake.queue_delay(1.0)` does the work, then
waits before answering (the client times out; its retry then gets the stored answer).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import stripe

API_KEY = "sk_test_fake_key"
WEBHOOK_SECRET = "whsec_test_secret"
LIVE_API_KEY = "sk_live_fake_key"
LIVE_WEBHOOK_SECRET = "whsec_live_secret"

CUSTOMER_PARAMS = {"name", "email", "metadata", "description", "phone", "expand"}
COUPON_PARAMS = {
    "percent_off",
    "amount_off",
    "currency",
    "duration",
    "duration_in_months",
    "name",
    "metadata",
    "id",
    "expand",
}
SESSION_PARAMS = {
    "mode",
    "customer",
    "line_items",
    "discounts",
    "success_url",
    "cancel_url",
    "metadata",
    "client_reference_id",
    "subscription_data",
    "payment_intent_data",
    "invoice_creation",
    "allow_promotion_codes",
    "expand",
}
SUBSCRIPTION_UPDATE_PARAMS = {
    "discounts",
    "metadata",
    "expand",
    "items",
    "proration_behavior",
    "cancel_at_period_end",
}
SUBSCRIPTION_CANCEL_PARAMS = {"prorate", "invoice_now", "expand"}
PORTAL_SESSION_PARAMS = {"customer", "return_url", "configuration", "expand"}
PRODUCT_CREATE_PARAMS = {"name", "metadata"}
REFUND_PARAMS = {"payment_intent", "charge", "amount", "reason", "metadata", "expand"}
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
CREDIT_NOTE_PARAMS = {
    "invoice",
    "amount",
    "lines",
    "reason",
    "memo",
    "credit_amount",
    "refund_amount",
    "out_of_band_amount",
    "email_type",
    "metadata",
    "expand",
}
CREDIT_NOTE_REASONS = {"duplicate", "fraudulent", "order_change", "product_unsatisfactory"}
STRIPE_INTERVALS = {"day", "week", "month", "year"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    params: dict
    headers: dict
    fault: str = ""

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


class StripeFailure(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                k: v
                for k, v in {"type": type, "message": message, "code": code, "param": param}.items()
                if v is not None
            }
        }


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """`a[b][0][c]=v` pairs → nested dicts, dicts keyed 0..n turned into lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key) or [key]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node):
        if isinstance(node, dict):
            node = {k: listify(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return listify(root)


def _missing(kind: str, object_id: str, param: str | None = None, status: int = 404) -> StripeFailure:
    return StripeFailure(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class FakeStripe:
    def __init__(self, api_key: str = API_KEY):
        self.api_key = api_key
        self.livemode = api_key.startswith(("sk_live_", "rk_live_"))
        self.modes: list[FakeStripe] = [self]  # the modes its server serves, told apart by key
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.customers: dict[str, dict] = {}
        self.coupons: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.products: dict[str, dict] = {}
        self.portal_sessions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}  # what paid each paid invoice, and how much of it is refunded
        self.refunds: dict[str, dict] = {}
        self.credit_notes: dict[str, dict] = {}
        self.account = {
            "id": "acct_fake123",
            "object": "account",
            "email": "billing@example.test",
            "settings": {"dashboard": {"display_name": "Example Billing Ltd"}},
            "business_profile": {"name": "Example Billing"},
        }
        self._idempotency: dict[str, tuple[str, dict, int, dict]] = {}
        self._faults: list = []
        self._ids = itertools.count(1)
        self._clock = itertools.count(1_760_000_000)
        self.on_request = None  # called with each Recorded before it is handled
        self.server: ThreadingHTTPServer | None = None

    # --- what a test uses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def queue_error(
        self,
        status: int,
        *,
        type: str | None = None,
        message: str = "Something went wrong.",
        code: str | None = None,
        times: int = 1,
        path: str | None = None,
    ) -> None:
        """The next `times` requests (to `path`, "METHOD /v1/…" with `*` for an id, if given) answer
        `status` with Stripe's error body, and change nothing."""
        if type is None:
            type = {
                400: "invalid_request_error",
                401: "invalid_request_error",
                404: "invalid_request_error",
                429: "rate_limit_error",
            }.get(status, "api_error")
        failure = StripeFailure(status, message, type=type, code=code)
        with self.lock:
            self._faults.extend([(self._matcher(path), "error", failure)] * times)

    def queue_delay(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        """The next `times` requests (to `path`, if given) are carried out, but answered only after `seconds`."""
        with self.lock:
            self._faults.extend([(self._matcher(path), "delay", seconds)] * times)

    @staticmethod
    def _matcher(path: str | None):
        if path is None:
            return None
        method, _, path = path.partition(" ")
        return method.upper(), re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$")

    def _take_fault(self, method: str, path: str):
        for index, (matcher, *fault) in enumerate(self._faults):
            if matcher is None or (matcher[0] == method and matcher[1].match(path)):
                del self._faults[index]
                return fault
        return None

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """Requests received for a path; `*` in `path` matches one id."""
        pattern = re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$")
        return [r for r in self.requests if r.method == method.upper() and pattern.match(r.path)]

    def live_mode(self, api_key: str = LIVE_API_KEY) -> FakeStripe:
        """The account's live mode, served by the same server for requests with `api_key`."""
        live = FakeStripe(api_key)
        live.server, live.modes = self.server, self.modes
        live.account = self.account  # one account, two modes
        self.modes.append(live)
        return live

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{'live' if self.livemode else 'fake'}{next(self._ids):05d}"

    def now(self) -> int:
        return next(self._clock)

    def add_customer(self, **fields) -> dict:
        customer = {
            "id": self.new_id("cus"),
            "object": "customer",
            "name": None,
            "email": None,
            "metadata": {},
            "created": self.now(),
            "discount": None,
            "livemode": self.livemode,
            **fields,
        }
        self.customers[customer["id"]] = customer
        return customer

    def add_invoice(
        self,
        *,
        customer: str,
        status: str = "paid",
        total: int = 9900,
        amount_paid: int | None = None,
        currency: str = "usd",
        product_id: str | None = None,
        subscription: str | None = None,
        **fields,
    ) -> dict:
        invoice_id = fields.pop("id", None) or self.new_id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "status": status,
            "total": total,
            "amount_paid": total if amount_paid is None and status == "paid" else (amount_paid or 0),
            "currency": currency,
            "created": self.now(),
            "livemode": self.livemode,
            "metadata": {},
            "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": subscription,
                    "metadata": {"product_id": product_id} if product_id else {},
                },
            }
            if subscription
            else None,
            "lines": {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": self.new_id("il"),
                        "object": "line_item",
                        "description": f"1 × {product_id or 'Subscription'}",
                        "quantity": 1,
                        "amount": total,
                        "currency": currency,
                        "metadata": {"product_id": product_id} if product_id else {},
                    }
                ],
            },
            **fields,
        }
        self.invoices[invoice_id] = invoice
        if invoice["amount_paid"]:
            intent_id = self.new_id("pi")
            self.payment_intents[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": invoice["amount_paid"],
                "amount_refunded": 0,
                "currency": currency,
                "invoice": invoice_id,
            }
        return invoice

    def payment_of(self, invoice_id: str) -> dict | None:
        """The payment intent that paid the invoice (its `amount_refunded` says how much went back)."""
        return next((p for p in self.payment_intents.values() if p["invoice"] == invoice_id), None)

    def add_subscription(
        self,
        *,
        customer: str,
        status: str = "active",
        product_id: str | None = None,
        period_start: int = 1_760_000_000,
        period_end: int = 1_762_678_400,
        **fields,
    ) -> dict:
        sub_id = fields.pop("id", None) or self.new_id("sub")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "created": self.now(),
            "start_date": period_start,
            "livemode": self.livemode,
            "metadata": {"product_id": product_id} if product_id else {},
            "trial_end": None,
            "canceled_at": None,
            "ended_at": None,
            "discounts": [],
            "items": {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": self.new_id("si"),
                        "object": "subscription_item",
                        "quantity": 1,
                        "current_period_start": period_start,
                        "current_period_end": period_end,
                        "price": {"id": self.new_id("price"), "object": "price", "product": self.new_id("prod")},
                    }
                ],
            },
            **fields,
        }
        self.subscriptions[sub_id] = sub
        return sub

    # --- the HTTP side ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, params: dict, headers: dict) -> tuple[int, dict, dict]:
        recorded = Recorded(method, path, query, params, headers)
        with self.lock:
            self.requests.append(recorded)
            fault = self._take_fault(method, path)
        if self.on_request is not None:
            self.on_request(recorded)
        if fault and fault[0] == "error":
            recorded.fault = f"error {fault[1].status}"
            return fault[1].status, fault[1].body, {}
        delay = fault[1] if fault else 0
        if delay:
            recorded.fault = f"delay {delay}"
        status, body, extra = self._answer(method, path, query, params, headers)
        if delay:
            time.sleep(delay)
        return status, body, extra

    def _answer(self, method, path, query, params, headers) -> tuple[int, dict, dict]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, StripeFailure(401, "Invalid API Key provided.").body, {}
        key = headers.get("idempotency-key") if method == "POST" else None
        with self.lock:
            if key and key in self._idempotency:
                first_path, first_params, status, body = self._idempotency[key]
                if (first_path, first_params) != (path, params):
                    failure = StripeFailure(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        "first used with.",
                        type="idempotency_error",
                    )
                    return 400, failure.body, {}
                return status, body, {"Idempotent-Replayed": "true"}
            try:
                status, body = 200, self._route(method, path, query, params)
            except StripeFailure as failure:
                return failure.status, failure.body, {}
            if key:
                self._idempotency[key] = (path, params, status, body)
            return status, body, {}

    def _route(self, method, path, query, params) -> dict:
        routes = [
            ("GET", r"/v1/account", lambda: self.account),
            ("POST", r"/v1/customers", lambda: self._customer_create(params)),
            ("GET", r"/v1/customers/([^/]+)", lambda i: self._customer(i)),
            ("POST", r"/v1/customers/([^/]+)", lambda i: self._customer_update(i, params)),
            ("DELETE", r"/v1/customers/([^/]+)", lambda i: self._customer_delete(i)),
            ("POST", r"/v1/coupons", lambda: self._coupon_create(params)),
            ("GET", r"/v1/coupons/([^/]+)", lambda i: self._get(self.coupons, "coupon", i)),
            ("POST", r"/v1/checkout/sessions", lambda: self._session_create(params)),
            ("GET", r"/v1/invoices", lambda: self._list(self.invoices, "/v1/invoices", query)),
            ("GET", r"/v1/invoices/([^/]+)", lambda i: self._invoice(i, query)),
            ("POST", r"/v1/invoices/([^/]+)/void", lambda i: self._invoice_void(i, params)),
            ("POST", r"/v1/refunds", lambda: self._refund_create(params)),
            ("POST", r"/v1/credit_notes", lambda: self._credit_note_create(params)),
            ("GET", r"/v1/subscriptions", lambda: self._list(self.subscriptions, "/v1/subscriptions", query)),
            ("GET", r"/v1/subscriptions/([^/]+)", lambda i: self._get(self.subscriptions, "subscription", i)),
            ("POST", r"/v1/subscriptions/([^/]+)", lambda i: self._subscription_update(i, params)),
            ("DELETE", r"/v1/subscriptions/([^/]+)", lambda i: self._subscription_cancel(i, params)),
            ("POST", r"/v1/products", lambda: self._product_create(params)),
            ("POST", r"/v1/billing_portal/sessions", lambda: self._portal_session_create(params)),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(*match.groups())
        raise StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")

    @staticmethod
    def _only(params: dict, allowed: set) -> None:
        for name in params:
            if name not in allowed:
                raise StripeFailure(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)

    @staticmethod
    def _get(store: dict, kind: str, object_id: str) -> dict:
        if object_id not in store:
            raise _missing(kind, object_id)
        return store[object_id]

    def _customer(self, customer_id: str) -> dict:
        customer = self._get(self.customers, "customer", customer_id)
        return {"id": customer_id, "object": "customer", "deleted": True} if customer.get("deleted") else customer

    def _live_customer(self, customer_id: str, *, param: str | None = None, status: int = 404) -> dict:
        customer = self.customers.get(customer_id)
        if customer is None or customer.get("deleted"):
            raise _missing("customer", customer_id, param=param, status=status)
        return customer

    def _customer_create(self, params: dict) -> dict:
        self._only(params, CUSTOMER_PARAMS)
        if params.get("email") and "@" not in params["email"]:
            raise StripeFailure(400, "Invalid email address: " + params["email"], code="email_invalid", param="email")
        return self.add_customer(
            name=params.get("name"), email=params.get("email"), metadata=params.get("metadata") or {}
        )

    def _customer_update(self, customer_id: str, params: dict) -> dict:
        customer = self._live_customer(customer_id)
        self._only(params, CUSTOMER_PARAMS)
        for name in ("name", "email", "description", "phone"):
            if name in params:
                customer[name] = params[name] or None
        if "metadata" in params:
            customer["metadata"] = {**customer["metadata"], **(params["metadata"] or {})}
        return customer

    def _customer_delete(self, customer_id: str) -> dict:
        customer = self._live_customer(customer_id)
        customer["deleted"] = True
        return {"id": customer_id, "object": "customer", "deleted": True}

    def _coupon_create(self, params: dict) -> dict:
        self._only(params, COUPON_PARAMS)
        duration = params.get("duration")
        if duration not in ("once", "repeating", "forever"):
            raise StripeFailure(400, "Invalid duration: must be one of once, repeating, or forever", param="duration")
        if duration == "repeating" and not params.get("duration_in_months"):
            raise StripeFailure(
                400, "Coupons with duration=repeating must specify duration_in_months.", param="duration_in_months"
            )
        if ("percent_off" in params) == ("amount_off" in params):
            raise StripeFailure(400, "You must pass exactly one of percent_off or amount_off.", param="percent_off")
        if "amount_off" in params and not params.get("currency"):
            raise StripeFailure(400, "You must pass currency when passing amount_off.", param="currency")
        if "percent_off" in params and not 0 < float(params["percent_off"]) <= 100:
            raise StripeFailure(400, "percent_off must be between 0 and 100.", param="percent_off")
        coupon_id = params.get("id") or self.new_id("coupon")
        if coupon_id in self.coupons:
            raise StripeFailure(400, "Coupon already exists.", code="resource_already_exists", param="id")
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "valid": True,
            "created": self.now(),
            "percent_off": float(params["percent_off"]) if "percent_off" in params else None,
            "amount_off": int(params["amount_off"]) if "amount_off" in params else None,
            "currency": params.get("currency"),
            "duration": duration,
            "duration_in_months": int(params["duration_in_months"]) if params.get("duration_in_months") else None,
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
        }
        self.coupons[coupon_id] = coupon
        return coupon

    def _session_create(self, params: dict) -> dict:
        self._only(params, SESSION_PARAMS)
        mode = params.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeFailure(400, "Missing required param: mode.", code="parameter_missing", param="mode")
        if not params.get("success_url"):
            raise StripeFailure(
                400, "Missing required param: success_url.", code="parameter_missing", param="success_url"
            )
        if params.get("customer"):
            self._live_customer(params["customer"], param="customer", status=400)
        recurring = self._recurring_items(params.get("line_items") or [])
        if mode == "payment" and recurring:
            raise StripeFailure(
                400, "You must be in subscription mode to specify a recurring price.", param="line_items"
            )
        if mode == "subscription" and not recurring:
            raise StripeFailure(
                400, "You must provide at least one recurring price in subscription mode.", param="line_items"
            )
        self._check_trial(params.get("subscription_data") or {}, mode)
        discounts = params.get("discounts") or []
        if len(discounts) > 1:
            raise StripeFailure(400, "You may only specify one discount.", param="discounts")
        for discount in discounts:
            if discount.get("coupon") not in self.coupons:
                raise _missing("coupon", discount.get("coupon"), param="discounts[0][coupon]", status=400)
        if discounts and params.get("allow_promotion_codes") == "true":
            raise StripeFailure(400, "You may only specify one of these parameters: allow_promotion_codes, discounts.")
        session_id = self.new_id("cs_live" if self.livemode else "cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "customer": params.get("customer"),
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "metadata": params.get("metadata") or {},
            "client_reference_id": params.get("client_reference_id"),
            "discounts": discounts,
            "created": self.now(),
        }
        self.sessions[session_id] = session
        return session

    def _check_trial(self, data: dict, mode: str) -> None:
        """A Checkout subscription's trial as Stripe checks it: 1 to 730 whole days, or an end at least 48
        hours and at most 730 days ahead; one of the two; subscription mode only."""
        days, end = data.get("trial_period_days"), data.get("trial_end")
        if days is None and end is None:
            return
        if mode != "subscription":
            raise StripeFailure(400, "You can only specify subscription_data in subscription mode.", param="mode")
        if days is not None and end is not None:
            raise StripeFailure(
                400, "You may only specify one of trial_end and trial_period_days.", param="subscription_data"
            )
        if days is not None and not (str(days).isdigit() and 1 <= int(days) <= 730):
            raise StripeFailure(
                400, "trial_period_days must be between 1 and 730.", param="subscription_data[trial_period_days]"
            )
        if end is not None:
            ahead = int(end) - int(time.time()) if str(end).isdigit() else -1
            if not 48 * 3600 <= ahead <= 730 * 86400:
                raise StripeFailure(
                    400,
                    "trial_end must be at least 48 hours and at most 730 days in the future.",
                    param="subscription_data[trial_end]",
                )

    @staticmethod
    def _recurring_items(items: list) -> int:
        """How many of a session's line items recur, once each is checked as Stripe does."""
        if not items:
            raise StripeFailure(400, "line_items is required in payment and subscription mode.", param="line_items")
        recurring = 0
        for index, item in enumerate(items):
            data = item.get("price_data")
            if data:
                if not data.get("currency") or "unit_amount" not in data:
                    raise StripeFailure(
                        400, "price_data needs currency and unit_amount.", param=f"line_items[{index}][price_data]"
                    )
                if not (data.get("product") or (data.get("product_data") or {}).get("name")):
                    raise StripeFailure(
                        400,
                        "Missing required param: line_items[][price_data][product_data][name].",
                        param=f"line_items[{index}][price_data][product_data][name]",
                    )
                if "recurring" in data:
                    if data["recurring"].get("interval") not in STRIPE_INTERVALS:
                        raise StripeFailure(
                            400,
                            "Invalid recurring interval.",
                            param=f"line_items[{index}][price_data][recurring][interval]",
                        )
                    recurring += 1
            elif item.get("price"):
                recurring += 1  # prices made in Stripe are treated as recurring here
            else:
                raise StripeFailure(400, "Each line item needs price or price_data.", param=f"line_items[{index}]")
        return recurring

    def _subscription_update(self, sub_id: str, params: dict) -> dict:
        sub = self._get(self.subscriptions, "subscription", sub_id)
        self._only(params, SUBSCRIPTION_UPDATE_PARAMS)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise StripeFailure(400, "A canceled subscription can only update its cancellation_details and metadata.")
        if "discounts" in params:
            discounts = params["discounts"] or []
            if discounts == "":
                discounts = []
            for index, discount in enumerate(discounts):
                if discount.get("coupon") not in self.coupons:
                    raise _missing("coupon", discount.get("coupon"), param=f"discounts[{index}][coupon]", status=400)
            sub["discounts"] = [self.new_id("di") for _ in discounts]
            sub["discount_coupons"] = [d["coupon"] for d in discounts]  # for tests: what the discounts redeem
        if "metadata" in params:
            sub["metadata"] = {**sub["metadata"], **(params["metadata"] or {})}
        if "cancel_at_period_end" in params:
            sub["cancel_at_period_end"] = params["cancel_at_period_end"] in (True, "true")
        if "items" in params:
            self._subscription_items(sub, params["items"] or [])
        if "proration_behavior" in params:
            if params["proration_behavior"] not in ("create_prorations", "none", "always_invoice"):
                raise StripeFailure(400, "Invalid proration_behavior.", param="proration_behavior")
            sub["last_proration_behavior"] = params["proration_behavior"]  # for tests: how it was prorated
        return sub

    def _subscription_items(self, sub: dict, items: list) -> None:
        """Stripe's item changes: `{id, deleted}` removes one, `{price}` or `{price_data}` (with a product
        id, as subscriptions require) adds one."""
        data = sub["items"]["data"]
        for index, item in enumerate(items):
            if item.get("deleted") in (True, "true"):
                if not any(i["id"] == item.get("id") for i in data):
                    raise _missing("subscription_item", item.get("id"), param=f"items[{index}][id]", status=400)
                data[:] = [i for i in data if i["id"] != item["id"]]
                continue
            price_data = item.get("price_data")
            if price_data is not None:
                if price_data.get("product") not in self.products:
                    raise _missing("product", price_data.get("product"), param=f"items[{index}][price_data][product]")
                price = {"id": self.new_id("price"), "object": "price", "product": price_data["product"]}
                price.update(unit_amount=int(price_data["unit_amount"]), currency=price_data["currency"])
            elif item.get("price"):
                price = {"id": item["price"], "object": "price"}
            else:
                raise StripeFailure(400, "Each item needs price or price_data.", param=f"items[{index}]")
            quantity = int(item.get("quantity") or 1)
            data.append({"id": self.new_id("si"), "object": "subscription_item", "quantity": quantity, "price": price})

    def _subscription_cancel(self, sub_id: str, params: dict) -> dict:
        sub = self._get(self.subscriptions, "subscription", sub_id)
        self._only(params, SUBSCRIPTION_CANCEL_PARAMS)
        if sub["status"] == "canceled":
            raise StripeFailure(400, "This subscription is already canceled.")
        sub.update(status="canceled", canceled_at=self.now(), ended_at=self.now())
        return sub

    def _product_create(self, params: dict) -> dict:
        self._only(params, PRODUCT_CREATE_PARAMS)
        if not params.get("name"):
            raise StripeFailure(400, "Missing required param: name.", param="name")
        product = {"id": self.new_id("prod"), "object": "product", "name": params["name"]}
        product["metadata"] = params.get("metadata") or {}
        self.products[product["id"]] = product
        return product

    def _portal_session_create(self, params: dict) -> dict:
        self._only(params, PORTAL_SESSION_PARAMS)
        self._live_customer(params.get("customer") or "", param="customer", status=400)
        session_id = self.new_id("bps")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
            "livemode": self.livemode,
            "url": f"https://billing.stripe.test/p/session/{session_id}",
        }
        self.portal_sessions[session_id] = session
        return session

    def _invoice(self, invoice_id: str, query: dict) -> dict:
        invoice = dict(self._get(self.invoices, "invoice", invoice_id))
        if "payments" in (query.get("expand") or []):
            intent = self.payment_of(invoice_id)
            paid = (
                [
                    {
                        "id": f"inpay_{intent['id']}",
                        "object": "invoice_payment",
                        "invoice": invoice_id,
                        "status": "paid",
                        "amount_paid": intent["amount"],
                        "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                    }
                ]
                if intent
                else []
            )
            invoice["payments"] = {"object": "list", "has_more": False, "data": paid}
        return invoice

    def _invoice_void(self, invoice_id: str, params: dict) -> dict:
        invoice = self._get(self.invoices, "invoice", invoice_id)
        self._only(params, {"expand"})
        if invoice["status"] != "open":
            raise StripeFailure(400, "You can only pass in open invoices. This invoice isn't open.")
        invoice["status"] = "void"
        return invoice

    def _refund_create(self, params: dict) -> dict:
        self._only(params, REFUND_PARAMS)
        if not params.get("payment_intent") and not params.get("charge"):
            raise StripeFailure(
                400, "One of the following params should be provided for this request: payment_intent or charge."
            )
        if params.get("charge"):
            raise _missing("charge", params["charge"], param="charge", status=400)  # the fake's payments are intents
        intent = self.payment_intents.get(params["payment_intent"])
        if intent is None:
            raise _missing("payment_intent", params["payment_intent"], param="payment_intent", status=400)
        if params.get("reason") and params["reason"] not in REFUND_REASONS:
            raise StripeFailure(
                400, f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}", param="reason"
            )
        left = intent["amount"] - intent["amount_refunded"]
        amount = int(params.get("amount") or left)
        if left <= 0:
            raise StripeFailure(
                400, f"Charge for {intent['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount <= 0:
            raise StripeFailure(400, "Invalid positive integer", param="amount")
        if amount > left:
            raise StripeFailure(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large",
                param="amount",
            )
        return self._refund(intent, amount, reason=params.get("reason"), metadata=params.get("metadata") or {})

    def _refund(self, intent: dict, amount: int, *, reason: str | None, metadata: dict) -> dict:
        intent["amount_refunded"] += amount
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "reason": reason,
            "metadata": metadata,
            "created": self.now(),
        }
        self.refunds[refund["id"]] = refund
        return refund

    def _credit_note_create(self, params: dict) -> dict:
        self._only(params, CREDIT_NOTE_PARAMS)
        invoice_id = params.get("invoice") or ""
        if invoice_id not in self.invoices:
            raise _missing("invoice", invoice_id, param="invoice", status=400)
        invoice = self.invoices[invoice_id]
        if invoice["status"] not in ("open", "paid"):
            raise StripeFailure(400, "You can only create a credit note for an open or paid invoice.", param="invoice")
        if "amount" in params and "lines" in params:
            raise StripeFailure(400, "You may only specify one of these parameters: amount, lines.")
        if params.get("reason") and params["reason"] not in CREDIT_NOTE_REASONS:
            raise StripeFailure(400, "Invalid reason.", param="reason")
        lines = self._credit_note_lines(invoice, params.get("lines") or [])
        total = int(params["amount"]) if "amount" in params else sum(line["amount"] for line in lines)
        credited = sum(n["total"] for n in self.credit_notes.values() if n["invoice"] == invoice_id)
        if total <= 0 or total > invoice["total"] - credited:
            raise StripeFailure(
                400,
                f"The credit note's total ({total}) must be positive and at most the invoice's remaining amount "
                f"({invoice['total'] - credited}).",
                param="amount",
            )
        split = {k: int(params[k]) for k in ("credit_amount", "refund_amount", "out_of_band_amount") if k in params}
        post = total if invoice["status"] == "paid" else 0
        if split and sum(split.values()) != post:
            raise StripeFailure(
                400,
                f"The sum of credit amount, refund amount and out of band amount ({sum(split.values())}) must equal "
                f"the credit note amount ({post}).",
            )
        refunds = []
        if split.get("refund_amount"):
            intent = self.payment_of(invoice_id)
            left = intent["amount"] - intent["amount_refunded"] if intent else 0
            if split["refund_amount"] > left:
                raise StripeFailure(
                    400,
                    f"Refund amount ({split['refund_amount']}) is greater than unrefunded amount on charge ({left})",
                    code="amount_too_large",
                    param="refund_amount",
                )
            refund = self._refund(intent, split["refund_amount"], reason=None, metadata={})
            refunds.append({"refund": refund["id"], "amount_refunded": refund["amount"]})
        if invoice["status"] == "open":
            invoice["amount_due"] = invoice.get("amount_due", invoice["total"]) - total
        note_id = self.new_id("cn")
        note = {
            "id": note_id,
            "object": "credit_note",
            "number": f"CN-{len(self.credit_notes) + 1:04d}",
            "invoice": invoice_id,
            "customer": invoice["customer"],
            "status": "issued",
            "currency": invoice["currency"],
            "amount": total,
            "subtotal": total,
            "total": total,
            "discount_amount": 0,
            "pre_payment_amount": total - post,
            "post_payment_amount": post,
            "out_of_band_amount": split.get("out_of_band_amount") or None,
            "refunds": refunds,
            "reason": params.get("reason"),
            "memo": params.get("memo"),
            "pdf": f"https://pay.stripe.com/credit_notes/{note_id}/pdf",
            "created": self.now(),
            "livemode": self.livemode,
            "lines": {"object": "list", "has_more": False, "data": lines},
        }
        self.credit_notes[note_id] = note
        return note

    def _credit_note_lines(self, invoice: dict, lines: list) -> list[dict]:
        by_id = {line["id"]: line for line in invoice["lines"]["data"]}
        out = []
        for index, line in enumerate(lines):
            billed = by_id.get(line.get("invoice_line_item"))
            if line.get("type") != "invoice_line_item" or billed is None:
                raise _missing(
                    "invoice_line_item",
                    line.get("invoice_line_item"),
                    param=f"lines[{index}][invoice_line_item]",
                    status=400,
                )
            quantity = int(line["quantity"]) if "quantity" in line else None
            if quantity is not None and quantity > (billed.get("quantity") or 1):
                raise StripeFailure(
                    400,
                    "The quantity cannot exceed the invoice line item's quantity.",
                    param=f"lines[{index}][quantity]",
                )
            unit = billed["amount"] // max(1, billed.get("quantity") or 1)
            amount = int(line["amount"]) if "amount" in line else unit * (quantity or 1)
            out.append(
                {
                    "id": self.new_id("cnli"),
                    "object": "credit_note_line_item",
                    "type": "invoice_line_item",
                    "invoice_line_item": billed["id"],
                    "description": billed.get("description"),
                    "quantity": quantity,
                    "amount": amount,
                }
            )
        return out

    def _list(self, store: dict, url: str, query: dict) -> dict:
        rows = list(store.values())
        if "customer" in query:
            self._live_customer(query["customer"], param="customer", status=400)
            rows = [r for r in rows if r["customer"] == query["customer"]]
        if store is self.subscriptions:
            wanted = query.get("status")
            if wanted is None:
                rows = [r for r in rows if r["status"] not in ("canceled", "incomplete_expired")]
            elif wanted != "all":
                rows = [r for r in rows if r["status"] == wanted]
        rows.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        if query.get("starting_after"):
            ids = [r["id"] for r in rows]
            if query["starting_after"] not in ids:
                raise _missing("object", query["starting_after"], param="starting_after", status=400)
            rows = rows[ids.index(query["starting_after"]) + 1 :]
        limit = int(query.get("limit", 10))
        if not 1 <= limit <= 100:
            raise StripeFailure(400, "Invalid integer: limit must be between 1 and 100.", param="limit")
        return {"object": "list", "url": url, "has_more": len(rows) > limit, "data": rows[:limit]}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _serve(self):
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        query = decode_form(parse_qsl(split.query, keep_blank_values=True))
        params = decode_form(parse_qsl(body, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake = next((f for f in self.fake.modes if headers.get("authorization") == f"Bearer {f.api_key}"), self.fake)
        status, payload, extra = fake.handle(self.command, split.path, query, params, headers)
        data = json.dumps(payload).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_fake{int(time.time() * 1000)}")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve


@contextlib.contextmanager
def running_fake_stripe(api_key: str = API_KEY):
    fake = FakeStripe(api_key)
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.server = server
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def signed(payload: dict | str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[str, str]:
    """A webhook body and its Stripe-Signature header, as Stripe would send them."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return body, stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)


def event(type: str, obj: dict, *, created: int, event_id: str | None = None, livemode: bool = False) -> dict:
    """A Stripe event of `type` carrying a snapshot of `obj` (a test-mode event unless `livemode`)."""
    return {
        "id": event_id or f"evt_{type.replace('.', '_')}_{created}_{obj['id']}",
        "object": "event",
        "type": type,
        "created": created,
        "livemode": livemode,
        "api_version": stripe.api_version,
        "data": {"object": json.loads(json.dumps(obj))},
        "pending_webhooks": 1,
    }
