"""The sandbox/live switch: where it sends the user back to."""

import pytest


@pytest.mark.parametrize(
    "target", ["customers:list", "not a path", "é🙂" * 50, "logout"], ids=["view-name", "words", "unicode", "url-name"]
)
def test_switching_env_with_a_next_that_is_not_a_path_goes_to_the_customers_list(ops_client, target):
    response = ops_client.post("/env/", {"env": "live", "next": target})

    assert response.status_code == 302
    assert response["Location"] == "/customers/"
    assert ops_client.session["env"] == "live"


def test_switching_env_returns_to_the_page_it_was_asked_from(ops_client):
    response = ops_client.post("/env/", {"env": "live", "next": "/stripe/?x=1"})

    assert response["Location"] == "/stripe/?x=1"


def test_switching_env_never_redirects_off_site(ops_client):
    response = ops_client.post("/env/", {"env": "live", "next": "//evil.example/"})

    assert response["Location"] == "/customers/"
