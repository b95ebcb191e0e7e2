"""The benchmark's catalogue: its features, plans (free, pro, scale, enterprise) and rewards, written with
the ORM (it is small).

Mixed into bench/generate.py's Generator, whose helpers (`_cursor`, `_created`, `_loading_session`) and
settings (`scale`, `typical`, `now`) it uses."""

from __future__ import annotations

from decimal import Decimal

from bench.dataset import HEAVY_RESOURCES


class CatalogueRows:
    def catalogue(self) -> dict:
        from billing.models import Feature, Price, Product, ProductItem, Reward

        def feature(fid, name, ftype="metered", usage="single_use"):
            return Feature.objects.create(
                feature_id=fid,
                name=name,
                type=ftype,
                usage_type=usage,
                event_names=[fid.rstrip("s") + "_used"] if ftype != "boolean" else [],
            )

        f = {
            "messages": feature("messages", "Messages"),
            "api_calls": feature("api_calls", "API calls"),
            "seats": feature("seats", "Seats", usage="continuous_use"),
            "sso": feature("sso", "SSO", "boolean", ""),
        }
        heavy = []
        for n in range(self.scale.heavy_balances):
            resource = HEAVY_RESOURCES[n % len(HEAVY_RESOURCES)]
            tier = "" if n < len(HEAVY_RESOURCES) else "priority_"
            fid = f"ent_{tier}{resource}"
            heavy.append(feature(fid, f"{'Priority ' if tier else ''}{resource.replace('_', ' ').capitalize()}"))
        month = {"interval": "month"}
        products = {}
        for pid, name, amount, items in (
            ("free", "Free", 0, [("messages", 100, False, month), ("api_calls", 1000, False, month)]),
            (
                "pro",
                "Pro",
                9900,
                [
                    ("messages", 5000, False, month),
                    ("api_calls", 50_000, False, month),
                    ("seats", 10, False, {"interval": "lifetime"}),
                    ("sso", 0, False, {"interval": "lifetime"}),
                ],
            ),
            (
                "scale",
                "Scale",
                25000,
                [
                    ("messages", 20_000, True, month),
                    ("api_calls", 250_000, True, month),
                    ("seats", 50, False, {"interval": "lifetime"}),
                    ("sso", 0, False, {"interval": "lifetime"}),
                ],
            ),
        ):
            product = Product.objects.create(product_id=pid, name=name, is_default=pid == "free")
            if amount:
                Price.objects.create(product=product, type="fixed", amount=amount, currency="usd", interval="month")
            for fid, included, overage, interval in items:
                ProductItem.objects.create(
                    product=product, feature=f[fid], included=included, overage_allowed=overage, **interval
                )
            products[pid] = product
        Price.objects.create(
            product=products["scale"],
            type="usage",
            feature=f["api_calls"],
            amount=100,
            billing_units=1000,
            currency="usd",
            interval="month",
        )
        base = Product.objects.create(product_id="enterprise", name="Enterprise")
        Price.objects.create(product=base, type="fixed", amount=500_000, currency="usd", interval="month")
        custom = Product.objects.create(
            product_id="enterprise", name="Enterprise (Megacorp)", base_product=base, custom_for_id=1
        )
        Price.objects.create(product=custom, type="fixed", amount=420_000, currency="usd", interval="month")
        for n, feat in enumerate(heavy):
            ProductItem.objects.create(
                product=custom,
                feature=feat,
                included=1_000_000 * (1 + n % 5),
                overage_allowed=n % 3 == 0,
                interval="month",
            )
        products["enterprise"] = custom
        rewards = [
            Reward.objects.create(
                reward_id="partner_10",
                name="10% off forever (partner)",
                type="percentage_discount",
                value=Decimal(10),
                duration="forever",
            ),
            Reward.objects.create(
                reward_id="spring_20",
                name="20% off for 3 months",
                type="percentage_discount",
                value=Decimal(20),
                duration="months",
                duration_months=3,
            ),
        ]
        return {"features": f, "heavy_features": heavy, "products": products, "rewards": rewards}
