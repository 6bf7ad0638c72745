"""The Tweakwise sandbox: auth, validation against Tweakwise's own OpenAPI file, state, tasks, faults."""

from __future__ import annotations

import pytest
import requests

from conftest import ACCESS_TOKEN, INSTANCE_KEY, ROOT, SECRET_ID
from tweakwise import errors
from tweakwise.client import TweakwiseClient
from tweakwise.credentials import SecretCredentials
from tweakwise_local.sandbox import SPEC_FILE, Faults, RequestValidator

GUID = "3f2b8a3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
SHARED_SPEC = ROOT.parent / "shared" / "tweakwise" / "backend-openapi-2022.yaml"


@pytest.fixture
def client(sandbox, secrets):
    return TweakwiseClient(SecretCredentials(SECRET_ID), sandbox.url, backoff_factor=0.01, backoff_jitter=0)


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="../shared is not beside this clone")
def test_the_bundled_spec_is_the_shared_one():
    assert SPEC_FILE.read_bytes() == SHARED_SPEC.read_bytes()


def test_every_write_of_the_spec_is_checked_with_item_for_product():
    validator = RequestValidator()
    assert validator.schema_name("POST", "/item") == "ProductApiModel"
    assert validator.schema_name("PUT", "/item") == "ProductApiModel"
    assert validator.schema_name("PATCH", "/item/A%2FB") == "ProductDeltaApiModel"
    assert validator.schema_name("POST", "/category") == "CategoryApiModel"
    assert validator.schema_name("PATCH", "/category/5") == "CategoryDeltaApiModel"
    assert validator.schema_name("POST", "/product") is None


@pytest.mark.parametrize(
    ("method", "path", "body", "problem"),
    [
        ("POST", "/item", {"ArticleNumber": "A", "Nmae": "typo"}, "Additional properties"),
        ("POST", "/item", {"ArticleNumber": "A", "Price": "12"}, "Price: '12' is not of type 'number'"),
        ("PATCH", "/item/A", {"ArticleNumber": "A"}, "Additional properties"),
        ("PATCH", "/item/A", {"Attributes": [{"Key": "c", "Values": "red"}]}, "Attributes/0/Values"),
        ("POST", "/category", {"CategoryId": "7", "Name": "x"}, "CategoryId: '7' is not of type 'integer'"),
        ("PATCH", "/category/7", {"Parents": [1.5]}, "Parents/0"),
    ],
)
def test_bodies_that_break_the_spec_are_400(method, path, body, problem):
    assert any(problem in error for error in RequestValidator().errors(method, path, body))


def test_bodies_the_client_sends_pass(client, sandbox):
    client.create_item(
        {
            "ArticleNumber": "A",
            "Name": "N",
            "Price": 1.5,
            "Stock": 2,
            "Categories": [1],
            "Attributes": [{"Key": "c", "Values": ["red"]}],
            "Type": "product",
        }
    )
    client.patch_item("A", {"Name": "M", "Brand": "B", "GroupCode": "G", "Image": "i", "Url": "u"})
    client.create_category({"CategoryId": 1, "Name": "Root", "Rank": 1, "Parents": [], "Url": "https://x"})
    client.patch_category(1, {"Name": "Top"})
    assert sandbox.items["A"]["Name"] == "M" and sandbox.categories[1]["Name"] == "Top"
    assert client.total_products() == 1 and client.total_categories() == 1


def test_a_rejected_body_comes_back_as_the_clients_validation_error(client):
    with pytest.raises(errors.RejectedError) as caught:
        client.create_item({"ArticleNumber": "A", "Colour": "red"})
    assert "Additional properties are not allowed ('Colour' was unexpected)" in str(caught.value)


@pytest.mark.parametrize(
    "headers",
    [{}, {"TWN-InstanceKey": INSTANCE_KEY}, {"TWN-InstanceKey": INSTANCE_KEY, "TWN-Authentication": "wrong"}],
)
def test_requests_without_both_correct_headers_are_401(sandbox, headers):
    assert requests.get(f"{sandbox.url}/stats/totalproducts", headers=headers, timeout=5).status_code == 401


def test_tasks_run_then_finish_or_fail(sandbox):
    headers = {"TWN-InstanceKey": INSTANCE_KEY, "TWN-Authentication": ACCESS_TOKEN}
    assert requests.get(f"{sandbox.url}/task/trigger/{INSTANCE_KEY}/{GUID}", timeout=5).status_code == 200
    status = f"{sandbox.url}/task/status/{INSTANCE_KEY}/{GUID}"
    assert requests.get(status, headers=headers, timeout=5).json() == {"Status": "Running"}
    assert requests.get(status, headers=headers, timeout=5).json() == {"Status": "Finished"}
    sandbox.fail_tasks = True
    requests.get(f"{sandbox.url}/task/trigger/{INSTANCE_KEY}/{GUID}", timeout=5)
    requests.get(status, headers=headers, timeout=5)
    assert requests.get(status, headers=headers, timeout=5).json() == {"Status": "Failed"}
    assert requests.get(f"{sandbox.url}/task/trigger/{INSTANCE_KEY}/not-a-guid", timeout=5).status_code == 400
    assert requests.get(f"{sandbox.url}/task/trigger/other/{GUID}", timeout=5).status_code == 404


def test_injected_429_carries_retry_after_and_the_client_waits_it_out(sandbox, client):
    sandbox.faults = Faults.parse("429=1,retry-after=1")
    raw = requests.get(f"{sandbox.url}/stats/totalproducts", timeout=5)
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "1"
    with pytest.raises(errors.RateLimitedError):
        TweakwiseClient(client.credentials, sandbox.url, max_retries=1).total_products()
    sandbox.faults = Faults.parse("5xx=1")
    with pytest.raises(errors.ServerError):
        TweakwiseClient(client.credentials, sandbox.url, max_retries=0).total_products()


def test_fault_flags_are_parsed_and_checked():
    faults = Faults.parse("429=0.2, 5xx=0.1, latency=0.05, retry-after=3")
    assert (faults.rate_limit, faults.server_error, faults.latency, faults.retry_after) == (0.2, 0.1, 0.05, 3)
    with pytest.raises(ValueError, match="unknown fault 'boom'"):
        Faults.parse("boom=1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("429=1.5", "fault 429 is a probability from 0 to 1, got '1.5'"),
        ("5xx=-0.1", "fault 5xx is a probability from 0 to 1, got '-0.1'"),
        ("5xx=lots", "fault 5xx must be a number, got 'lots'"),
        ("retry-after=0.5", "fault retry-after must be a whole number, got '0.5'"),
        ("latency=-1", "fault latency must not be negative, got '-1'"),
        ("429=0.6,5xx=0.6", "faults 429 and 5xx add up to more than 1 in '429=0.6,5xx=0.6'"),
    ],
)
def test_a_bad_fault_value_is_named(text, message):
    with pytest.raises(ValueError) as caught:
        Faults.parse(text)
    assert str(caught.value) == message
