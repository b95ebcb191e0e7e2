"""The demo data of `manage.py demo`, by subject: the catalogue, and the customers with their usage."""
