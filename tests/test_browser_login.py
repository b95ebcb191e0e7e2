"""The browser path works: an ops user logs in and sees the customers page."""

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ops_logs_in_and_sees_customers(live_server, page, ops, customer):
    page.goto(f"{live_server.url}/customers/")
    assert "/login/" in page.url
    page.get_by_label("Username").fill(ops.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/customers/")
    assert page.get_by_role("heading", name="Customers").is_visible()
    assert page.get_by_role("link", name="Acme Corp").is_visible()
