"""The catalogue's reads: its specs, their checks and the planning of a change (the writes are in
`billing/services/catalogue.py`)."""
