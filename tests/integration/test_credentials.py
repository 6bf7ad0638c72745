"""Credentials from Secrets Manager (moto): caching, rotation, every error path, never leaking the token."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from conftest import ACCESS_TOKEN, INSTANCE_KEY, REGION, SECRET_ID, CallCounter
from tweakwise import errors
from tweakwise.client import TweakwiseClient
from tweakwise.credentials import SecretCredentials


def test_reads_the_secret_once_per_max_age(secrets):
    creds = SecretCredentials(SECRET_ID, max_age=300)
    calls = CallCounter(creds.provider.client, "GetSecretValue")
    first = creds.get()
    assert (first.instance_key, first.access_token) == (INSTANCE_KEY, ACCESS_TOKEN)
    for _ in range(10):
        assert creds.get() is first
    assert calls.count == 1
    creds.get(force=True)
    assert calls.count == 2


def test_max_age_zero_reads_every_time(secrets):
    creds = SecretCredentials(SECRET_ID, max_age=0)
    calls = CallCounter(creds.provider.client, "GetSecretValue")
    creds.get()
    creds.get()
    assert calls.count == 2


def test_extra_keys_are_kept_beside_the_credentials(secrets):
    secrets({"instance_key": "k", "access_token": "t", "tasks": {"publish": "g"}})
    assert SecretCredentials(SECRET_ID).get().extra == {"tasks": {"publish": "g"}}


def test_missing_secret_names_the_secret_id(aws):
    with pytest.raises(
        errors.CredentialsError, match=r"Secret 'nope/missing' was not found; check TWEAKWISE"
    ):
        SecretCredentials("nope/missing").get()


def test_access_denied_names_the_secret_and_the_permission(secrets, monkeypatch):
    creds = SecretCredentials(SECRET_ID)

    def deny(*_args, **_kwargs):
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    monkeypatch.setattr(creds.provider.client, "get_secret_value", deny)
    with pytest.raises(
        errors.CredentialsError, match=rf"Access denied reading secret '{SECRET_ID}'.*GetSecretValue"
    ):
        creds.get()


@pytest.mark.parametrize(
    ("code", "text"),
    [("DecryptionFailure", "could not be decrypted"), ("InternalServiceError", "InternalServiceError")],
)
def test_other_read_errors_name_the_secret(secrets, monkeypatch, code, text):
    from botocore.exceptions import ClientError

    creds = SecretCredentials(SECRET_ID)

    def fail(*_args, **_kwargs):
        raise ClientError({"Error": {"Code": code, "Message": "x"}}, "GetSecretValue")

    monkeypatch.setattr(creds.provider.client, "get_secret_value", fail)
    with pytest.raises(errors.CredentialsError, match=text) as caught:
        creds.get()
    assert caught.value.secret_id == SECRET_ID


def test_secret_that_is_not_json(secrets):
    secrets(f"instance_key={INSTANCE_KEY};access_token={ACCESS_TOKEN}")
    with pytest.raises(errors.CredentialsError, match="is not valid JSON") as caught:
        SecretCredentials(SECRET_ID).get()
    assert ACCESS_TOKEN not in str(caught.value)


def test_missing_secret_id_env_is_explained(monkeypatch):
    monkeypatch.delenv("TWEAKWISE_SECRET_ID", raising=False)
    with pytest.raises(errors.ConfigurationError, match="TWEAKWISE_SECRET_ID is not set"):
        TweakwiseClient.from_env()


def test_max_age_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", "s")
    assert TweakwiseClient.from_env().credentials.max_age == 300
    monkeypatch.setenv("TWEAKWISE_SECRET_MAX_AGE", "60")
    assert TweakwiseClient.from_env().credentials.max_age == 60
    monkeypatch.setenv("TWEAKWISE_SECRET_MAX_AGE", "five")
    with pytest.raises(errors.ConfigurationError, match="TWEAKWISE_SECRET_MAX_AGE must be a whole number"):
        TweakwiseClient.from_env()


# -- rotation: the client re-reads the secret once on 401/403 ------------------------------------------


def _authorised(token):
    def handler(request):
        from werkzeug import Response

        ok = request.headers.get("TWN-Authentication") == token
        return Response("3" if ok else '{"Message": "Unauthorized"}', status=200 if ok else 401)

    return handler


@pytest.mark.parametrize("status", [401, 403])
def test_rotated_token_is_picked_up_without_a_redeploy(tweakwise, make_client, secrets, status, caplog):
    new_token = "tok-ROTATED-0a1b2c3d"
    client = make_client()
    calls = CallCounter(client.credentials.provider.client, "GetSecretValue")
    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(_authorised(ACCESS_TOKEN))
    assert client.total_products() == 3  # warm cache holds the old token
    secrets({"instance_key": INSTANCE_KEY, "access_token": new_token})  # rotated in Secrets Manager
    tweakwise.clear()

    def handler(request):
        from werkzeug import Response

        if request.headers.get("TWN-Authentication") == new_token:
            return Response("4")
        return Response("", status=status)

    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(handler)
    with caplog.at_level(logging.DEBUG):
        assert client.total_products() == 4
    assert calls.count == 2
    assert len(tweakwise.log) == 2
    assert "re-reading secret" in caplog.text
    assert new_token not in caplog.text and ACCESS_TOKEN not in caplog.text


def test_second_refusal_is_final(tweakwise, make_client):
    client = make_client()
    calls = CallCounter(client.credentials.provider.client, "GetSecretValue")
    tweakwise.expect_request("/stats/totalproducts").respond_with_data("", status=401)
    with pytest.raises(errors.AuthenticationError, match=r"answered 401.*Security > Access Token") as caught:
        client.total_products()
    assert len(tweakwise.log) == 2
    assert calls.count == 2
    assert ACCESS_TOKEN not in str(caught.value)


def test_client_from_env_uses_the_secret_named_there(tweakwise, secrets, monkeypatch):
    secrets({"instance_key": "other", "access_token": "x1"}, secret_id="arn-like/other")
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", "arn-like/other")
    monkeypatch.setenv("TWEAKWISE_API_URL", tweakwise.url_for("/"))
    tweakwise.expect_request("/stats/totalproducts", headers={"TWN-InstanceKey": "other"}).respond_with_json(
        7
    )
    assert TweakwiseClient.from_env().total_products() == 7


def test_secret_can_be_read_by_arn(secrets):
    arn = boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId=SECRET_ID)["ARN"]
    assert SecretCredentials(arn).get().instance_key == INSTANCE_KEY
    assert json.dumps(SecretCredentials(arn).get().extra) == "{}"


def _failing_read(monkeypatch, exception):
    creds = SecretCredentials(SECRET_ID)

    def fail(*_args, **_kwargs):
        raise exception

    monkeypatch.setattr(creds.provider.client, "get_secret_value", fail)
    return creds


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "AccessDeniedException",
            f"Access denied reading secret '{SECRET_ID}'; the function's role needs "
            "secretsmanager:GetSecretValue on it",
        ),
        (
            "KMSAccessDeniedException",
            f"Secret '{SECRET_ID}' could not be decrypted; the function's role needs ",
        ),
        ("ThrottlingException", f"Could not read secret '{SECRET_ID}' (ThrottlingException)"),
        ("", f"Could not read secret '{SECRET_ID}' (ClientError)"),
    ],
)
def test_read_errors_say_exactly_what_to_do(secrets, monkeypatch, code, message):
    from botocore.exceptions import ClientError

    error = ClientError({"Error": {"Code": code, "Message": "x"}}, "GetSecretValue")
    with pytest.raises(errors.CredentialsError) as caught:
        _failing_read(monkeypatch, error).get()
    assert str(caught.value).startswith(message)


def test_a_read_error_without_an_aws_answer_names_its_type(secrets, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    error = EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com")
    with pytest.raises(errors.CredentialsError) as caught:
        _failing_read(monkeypatch, error).get()
    assert str(caught.value) == f"Could not read secret '{SECRET_ID}' (EndpointConnectionError)"
