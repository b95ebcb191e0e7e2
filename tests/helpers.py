"""Small helpers for tests that read pages."""

import html


def page_text(response) -> str:
    """The response body with HTML entities decoded, so assertions read like the page does."""
    return html.unescape(response.content.decode())
