"""What the customers layer announces, so the layers above it act on a change without being imported here.

Receivers run in the sender's transaction (Django signals are synchronous): what they write commits or
rolls back with the change itself, and work outside the database (Stripe) they defer with `on_commit`.
"""

from django.dispatch import Signal

# A customer was created. Kwargs: customer, actor, with_defaults (put it on the default products).
customer_created = Signal()

# A customer's details were saved. Kwargs: customer, audit_entry, fields (the names that changed).
customer_details_changed = Signal()
