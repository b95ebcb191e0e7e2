"""Autumn's JSON shapes of what billing holds (a customer as customers.get answers it, a balance, a check's
answer, an invoice): reads, built here once so the API and the dashboard show the same thing."""
