"""Stripe going out: the client of each environment (config.py, client.py) and the pushes and calls the services
make with it (customers, checkout, discounts, subscriptions). Below the services; what comes in from Stripe
is billing/stripe_inbound/'s."""
