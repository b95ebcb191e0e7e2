"""The balance engine: every change of a balance by usage, and every check, as load -> decide -> store -> after
(see docs/architecture.md, "The balance engine")."""
