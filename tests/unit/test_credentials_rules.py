"""The secret's shape, checked without reading it."""

from __future__ import annotations

import pytest

from conftest import ACCESS_TOKEN, INSTANCE_KEY
from tweakwise import errors
from tweakwise.credentials import Credentials, parse_secret


def test_repr_never_shows_the_token():
    creds = Credentials(INSTANCE_KEY, ACCESS_TOKEN)
    assert ACCESS_TOKEN not in repr(creds) and ACCESS_TOKEN not in str(creds)
    assert creds.headers() == {"TWN-InstanceKey": INSTANCE_KEY, "TWN-Authentication": ACCESS_TOKEN}


@pytest.mark.parametrize("value", [[1, 2], "just a string", 42])
def test_secret_that_is_json_but_not_an_object(value):
    with pytest.raises(errors.CredentialsError, match="must be a JSON object"):
        parse_secret("s", value)


@pytest.mark.parametrize("key", ["instance_key", "access_token"])
@pytest.mark.parametrize("bad", [None, ""])
def test_missing_or_empty_key_is_named(key, bad):
    value = {"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN, key: bad}
    if bad is None:
        del value[key]
    with pytest.raises(errors.CredentialsError, match=f"has no '{key}' or it is empty"):
        parse_secret("s", value)


@pytest.mark.parametrize(
    "token",
    [ACCESS_TOKEN + "\n", ACCESS_TOKEN + "\r\nX-Evil: 1", " " + ACCESS_TOKEN, "tök\u00e9n", "a\tb", 123],
)
def test_values_invalid_in_a_header_are_refused_without_echoing_them(token):
    with pytest.raises(
        errors.CredentialsError, match="'access_token' must be a string of visible ASCII"
    ) as caught:
        parse_secret("s", {"instance_key": INSTANCE_KEY, "access_token": token})
    assert ACCESS_TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            [1, 2],
            "Secret 'tw/creds' must be a JSON object with 'instance_key' and 'access_token', "
            "found a JSON list",
        ),
        (
            {"access_token": ACCESS_TOKEN},
            "Secret 'tw/creds' has no 'instance_key' or it is empty; put both 'instance_key' and "
            "'access_token' in it (README: Deploy)",
        ),
        (
            {"instance_key": INSTANCE_KEY, "access_token": 7},
            "Secret 'tw/creds' key 'access_token' must be a string of visible ASCII characters without "
            "CR/LF or surrounding white space, as it is sent in an HTTP header",
        ),
    ],
)
def test_every_refusal_says_what_to_do_and_names_the_secret(value, message):
    from tweakwise.credentials import SecretCredentials

    for parse in (lambda v: parse_secret("tw/creds", v), SecretCredentials("tw/creds").parse):
        with pytest.raises(errors.CredentialsError) as caught:
            parse(value)
        assert str(caught.value) == message
        assert caught.value.secret_id == "tw/creds"


def test_task_values_are_remembered_as_secrets_whatever_their_shape():
    from tweakwise import secrecy

    opaque = "task-value-not-a-guid"
    parse_secret("s", {"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN, "tasks": {"t": opaque}})
    assert secrecy.scrub(f"GET /task/trigger/x/{opaque} failed") == "GET /task/trigger/x/*** failed"
    assert secrecy.scrub(f"key {INSTANCE_KEY} token {ACCESS_TOKEN}") == "key *** token ***"


def test_a_tasks_entry_that_is_no_object_is_kept_but_remembers_nothing():
    from tweakwise import secrecy

    found = parse_secret(
        "s", {"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN, "tasks": ["abcdef"]}
    )
    assert found.extra == {"tasks": ["abcdef"]}
    assert secrecy.scrub("abcdef") == "abcdef"
