"""The demo catalogue: credit features, plans of three groups with their prices, and rewards."""

from __future__ import annotations

from decimal import Decimal

from billing.models import (
    CreditCost,
    Feature,
    Price,
    Product,
    ProductItem,
    Reward,
)


class CatalogueMixin:
    """The demo catalogue, created once and found again on the next run."""

    def create_catalogue(self) -> dict:
        features = self.create_features()
        return {"features": features, "products": self.create_products(features), "rewards": self.create_rewards()}

    def create_features(self) -> dict:
        def feature(fid, name, ftype, usage_type="", events=(), unit=""):
            obj, _ = Feature.objects.update_or_create(
                feature_id=fid,
                defaults={
                    "name": name,
                    "type": ftype,
                    "usage_type": usage_type,
                    "event_names": list(events),
                    "unit_label": unit,
                },
            )
            return obj

        f = {
            "messages": feature("messages", "Messages", "metered", "single_use", ["message_sent"], "messages"),
            "api_calls": feature("api_calls", "API calls", "metered", "single_use", ["api_request"], "calls"),
            "ai_credits": feature(
                "ai_credits", "AI credits", "credit_system", "single_use", ["ai_generation"], "credits"
            ),
            # Drawn from the AI credits pool (they have no balance of their own): a reply costs 0.2 credits,
            # an image 0.6.
            "ai_chat": feature("ai_chat", "AI chat replies", "metered", "single_use", ["ai_chat"], "replies"),
            "image_generation": feature(
                "image_generation", "Image generations", "metered", "single_use", ["image_generated"], "images"
            ),
            "seats": feature("seats", "Seats", "metered", "continuous_use", [], "seats"),
            "sso": feature("sso", "SSO", "boolean"),
            "priority_support": feature("priority_support", "Priority support", "boolean"),
        }
        for metered, cost in (("ai_chat", "0.2"), ("image_generation", "0.6")):
            CreditCost.objects.update_or_create(
                credit_system=f["ai_credits"], metered_feature=f[metered], defaults={"credit_cost": Decimal(cost)}
            )
        return f

    def create_products(self, f: dict) -> dict:
        def product(pid, name, *, default=False, add_on=False, prices=(), items=(), trial=None):
            trial_fields = (
                {"trial_length": trial[0], "trial_unit": trial[1], "trial_card_required": True} if trial else {}
            )
            obj, created = Product.objects.get_or_create(
                product_id=pid,
                version=1,
                custom_for=None,
                defaults={"name": name, "is_default": default, "is_add_on": add_on, **trial_fields},
            )
            if created:
                for price in prices:
                    Price.objects.create(product=obj, **price)
                for item in items:
                    ProductItem.objects.create(product=obj, **item)
            return obj

        month = {"interval": "month"}
        p = {
            "free": product(
                "free",
                "Free",
                default=True,
                items=[
                    {"feature": f["messages"], "included": 100, **month},
                    {"feature": f["api_calls"], "included": 1000, **month},
                    {"feature": f["seats"], "included": 1, "interval": "lifetime"},
                ],
            ),
            "pro": product(
                "pro",
                "Pro",
                trial=(14, "day"),  # 14 days with a card, taken by Stripe Checkout
                prices=[{"type": "fixed", "amount": 9900, "currency": "usd", **month}],
                items=[
                    {"feature": f["messages"], "included": 5000, **month},
                    {"feature": f["api_calls"], "included": 50000, **month},
                    {"feature": f["seats"], "included": 10, "interval": "lifetime"},
                    {"feature": f["sso"], "interval": "lifetime"},
                ],
            ),
            "scale": product(
                "scale",
                "Scale",
                prices=[
                    {"type": "fixed", "amount": 25000, "currency": "usd", **month},
                    {
                        "type": "usage",
                        "feature": f["api_calls"],
                        "amount": 100,
                        "billing_units": 1000,
                        "currency": "usd",
                        **month,
                    },
                    {
                        "type": "usage",
                        "feature": f["messages"],
                        "amount": 1,
                        "billing_units": 1,
                        "currency": "usd",
                        **month,
                    },
                ],
                items=[
                    {"feature": f["messages"], "included": 20000, "overage_allowed": True, **month},
                    {
                        "feature": f["api_calls"],
                        "included": 250000,
                        "overage_allowed": True,
                        "usage_limit": 2000000,
                        **month,
                    },
                    {"feature": f["ai_credits"], "included": 1000, **month},
                    {"feature": f["seats"], "included": 50, "interval": "lifetime"},
                    {"feature": f["sso"], "interval": "lifetime"},
                    {"feature": f["priority_support"], "interval": "lifetime"},
                ],
            ),
            "seats_addon": product(
                "seats_addon",
                "Extra seats",
                add_on=True,
                prices=[{"type": "fixed", "amount": 2000, "currency": "usd", **month}],
                items=[{"feature": f["seats"], "included": 10, "interval": "lifetime"}],
            ),
        }
        return p

    def create_rewards(self) -> dict:
        def reward(rid, name, rtype, value, duration, months=None, active=True, codes=()):
            obj, _ = Reward.objects.update_or_create(
                reward_id=rid,
                defaults={
                    "name": name,
                    "type": rtype,
                    "value": Decimal(value),
                    "duration": duration,
                    "duration_months": months,
                    "active": active,
                    "promo_codes": list(codes),
                },
            )
            return obj

        r = {
            "20_off_3m": reward(
                "20_off_3m", "20% off for 3 months", "percentage_discount", 20, "months", 3, codes=["SPRING20"]
            ),
            "50_off_once": reward(
                "50_off_once", "$50 off once", "fixed_discount", 5000, "one_off", codes=["WELCOME50"]
            ),
            "10_off_forever": reward(
                "10_off_forever", "10% off forever (partner)", "percentage_discount", 10, "forever"
            ),
            "launch_week": reward(
                "launch_week", "Launch week 30% (ended)", "percentage_discount", 30, "months", 1, active=False
            ),
            "free_month_pro": reward("free_month_pro", "A month of Pro", "free_product", 0, "months", 1),
        }
        return r

    # --- customers --------------------------------------------------------------------------------
