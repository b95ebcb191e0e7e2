"""Stripe coming in: what Stripe tells us (a webhook event) or what the backfill reads back from it, checked
field by field (fields.py) and applied through the services (sync.py, with billing/services/stripe_state.py).
Above the services; the outbound client it reads with (billing/stripe_io/) is below them."""
