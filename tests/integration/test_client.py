"""The HTTP client over real sockets: headers, encoding, retries, Retry-After, deadlines, typed errors."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug import Response

from conftest import ACCESS_TOKEN, INSTANCE_KEY, SECRET_ID, LambdaContext
from tweakwise import errors
from tweakwise.client import TweakwiseClient, render_path


def _json(payload, status=200, headers=None):
    return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")


class Sequence:
    """Answers a request with the next response of a list, recording what arrived."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests = []
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.requests.append(
                {
                    "headers": dict(request.headers),
                    "body": request.get_data(),
                    "port": request.environ.get("REMOTE_PORT"),
                    "at": time.monotonic(),
                }
            )
            answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        return answer if isinstance(answer, Response) else answer(request)


def test_every_request_sends_both_headers_user_agent_and_json(tweakwise, make_client):
    seq = Sequence(_json({}))
    tweakwise.expect_request("/item", method="POST").respond_with_handler(seq)
    make_client().create_item({"ArticleNumber": "A1", "Name": "Shoe"})
    sent = seq.requests[0]
    assert sent["headers"]["Twn-Instancekey"] == INSTANCE_KEY
    assert sent["headers"]["Twn-Authentication"] == ACCESS_TOKEN
    assert sent["headers"]["Accept"] == "application/json"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["User-Agent"].startswith("tweakwise-serverless/0.1.0")
    assert json.loads(sent["body"]) == {"ArticleNumber": "A1", "Name": "Shoe"}


@pytest.mark.parametrize(
    ("item_id", "encoded"),
    [("a/b c", "a%2Fb%20c"), ("schoen-\u00e9\u00df", "schoen-%C3%A9%C3%9F"), ("50%?#", "50%25%3F%23")],
)
def test_item_ids_are_url_encoded_in_the_path(tweakwise, make_client, item_id, encoded):
    seen = []

    def record(request):
        seen.append(
            request.environ["RAW_URI"] if "RAW_URI" in request.environ else request.environ["REQUEST_URI"]
        )
        return _json({"ArticleNumber": item_id})

    tweakwise.expect_request(f"/item/{item_id}", method="GET").respond_with_handler(record)
    assert make_client().request("GET", "/item/{item_id}", item_id=item_id) == {"ArticleNumber": item_id}
    assert seen == [f"/item/{encoded}"]


@contextlib.contextmanager
def _http11_server(answer=lambda handler: None):
    """An HTTP/1.1 server (keep-alive; werkzeug behind pytest-httpserver closes every connection) that
    records each request's (client port, request target) and answers the count 7."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen.append((self.client_address[1], self.path))
            answer(self)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1")
            self.end_headers()
            self.wfile.write(b"7")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_keep_alive_reuses_one_connection(make_client):
    with _http11_server() as (url, seen):
        client = make_client()
        client.base_url = url
        for _ in range(5):
            assert client.total_products() == 7
    assert len(seen) == 5
    assert len({port for port, _ in seen}) == 1


def test_the_pool_keeps_one_connection_per_concurrent_caller(make_client):
    # 15 callers at once, twice: with a pool of 15 the second round reuses the first round's 15
    # connections (a pool smaller than the callers throws the extra connections away and opens new ones).
    callers = 15
    barrier = threading.Barrier(callers)
    with _http11_server(lambda _handler: barrier.wait(timeout=5)) as (url, seen):
        client = make_client(pool_size=callers)
        client.base_url = url
        for _round in range(2):
            with ThreadPoolExecutor(callers) as pool:
                assert list(pool.map(lambda _: client.total_products(), range(callers))) == [7] * callers
    assert len(seen) == 2 * callers
    assert len({port for port, _ in seen}) == callers


def test_proxy_variables_of_the_environment_are_not_read(make_client, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with _http11_server() as (url, seen):
        client = make_client()
        client.base_url = url
        assert client.total_products() == 7
    assert seen[0][1] == "/stats/totalproducts"  # asked directly, not through a proxy


def test_a_proxy_url_sends_the_calls_through_that_proxy(make_client):
    with _http11_server() as (proxy, seen):
        client = make_client(proxy_url=proxy)
        client.base_url = "http://tweakwise.invalid"
        assert client.total_products() == 7
    assert seen[0][1] == "http://tweakwise.invalid/stats/totalproducts"  # a proxy's absolute-form target


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(tweakwise, make_client, status):
    seq = Sequence(_json({}, status=status), _json({"TotalProducts": 12}))
    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(seq)
    assert make_client().total_products() == 12
    assert len(seq.requests) == 2


def test_retry_after_is_honoured(tweakwise, make_client):
    seq = Sequence(_json({}, status=429, headers={"Retry-After": "1"}), _json(3))
    tweakwise.expect_request("/stats/totalcategories").respond_with_handler(seq)
    assert make_client().total_categories() == 3
    waited = seq.requests[1]["at"] - seq.requests[0]["at"]
    assert 0.9 <= waited < 3


def test_rate_limit_after_retries_is_a_typed_error(tweakwise, make_client):
    seq = Sequence(_json({}, status=429, headers={"Retry-After": "0"}))
    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(seq)
    with pytest.raises(errors.RateLimitedError) as caught:
        make_client(max_retries=2).total_products()
    assert len(seq.requests) == 3
    assert caught.value.retry_after == 0
    assert "GET /stats/totalproducts answered 429" in str(caught.value)


def test_retry_after_longer_than_allowed_is_not_waited_for(tweakwise, make_client):
    seq = Sequence(_json({}, status=503, headers={"Retry-After": "120"}))
    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(seq)
    started = time.monotonic()
    with pytest.raises(errors.ServerError, match="answered 503"):
        make_client(max_retry_after=5).total_products()
    assert time.monotonic() - started < 2
    assert len(seq.requests) == 1


def test_retries_stop_before_the_lambda_deadline(tweakwise, make_client):
    seq = Sequence(_json({}, status=503, headers={"Retry-After": "3"}))
    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(seq)
    client = make_client(connect_timeout=0.5, read_timeout=0.5)
    client.set_deadline(LambdaContext(timeout=4.0))  # 3 s usable: one 3 s wait leaves no attempt
    started = time.monotonic()
    with pytest.raises(errors.ServerError):
        client.total_products()
    assert time.monotonic() - started < 1.5
    assert len(seq.requests) == 1


def test_read_timeout_is_bounded_by_the_deadline(tweakwise, make_client):
    def slow(_request):
        time.sleep(2.5)
        return _json(1)

    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(slow)
    client = make_client(read_timeout=10.0, max_retries=3)
    client.set_deadline(LambdaContext(timeout=2.0))  # 1 s usable
    started = time.monotonic()
    with pytest.raises(errors.RequestTimeoutError, match="GET /stats/totalproducts"):
        client.total_products()
    assert time.monotonic() - started < 2.0


def test_no_time_left_fails_without_sending(tweakwise, make_client):
    seq = Sequence(_json(1))
    tweakwise.expect_request("/stats/totalproducts").respond_with_handler(seq)
    client = make_client()
    client.set_deadline(LambdaContext(timeout=0.5))
    with pytest.raises(errors.RequestTimeoutError, match="no time left"):
        client.total_products()
    assert seq.requests == []
    client.set_deadline(None)  # outside Lambda: no deadline
    assert client.total_products() == 1


def test_read_timeout_on_get_is_retried_then_typed(tweakwise, make_client):
    def slow(_request):
        time.sleep(0.6)
        return _json(1)

    seq = Sequence(slow)
    tweakwise.expect_request("/item/A", method="GET").respond_with_handler(seq)
    with pytest.raises(errors.RequestTimeoutError, match="GET /item/A"):
        make_client(read_timeout=0.2, max_retries=1).request("GET", "/item/{item_id}", item_id="A")
    assert len(seq.requests) == 2


def test_post_is_never_retried_blindly(tweakwise, make_client):
    seq = Sequence(_json({}, status=503))
    tweakwise.expect_request("/item", method="POST").respond_with_handler(seq)
    with pytest.raises(errors.ServerError, match="POST /item answered 503"):
        make_client().create_item({"ArticleNumber": "A"})
    assert len(seq.requests) == 1


def test_post_read_timeout_is_not_retried(tweakwise, make_client):
    def slow(_request):
        time.sleep(0.6)
        return _json({})

    seq = Sequence(slow)
    tweakwise.expect_request("/category", method="POST").respond_with_handler(seq)
    with pytest.raises(errors.RequestTimeoutError, match="POST /category"):
        make_client(read_timeout=0.2).create_category({"CategoryId": 1})
    time.sleep(0.5)
    assert len(seq.requests) == 1


def test_connection_refused_is_a_typed_error(secrets):
    from tweakwise.credentials import SecretCredentials

    client = TweakwiseClient(
        SecretCredentials(SECRET_ID), "http://127.0.0.1:9", max_retries=1, backoff_factor=0.01
    )
    with pytest.raises(errors.ConnectionFailedError, match="GET /stats/totalproducts") as caught:
        client.total_products()
    assert ACCESS_TOKEN not in str(caught.value)


def test_validation_error_surfaces_tweakwise_messages(tweakwise, make_client):
    body = {"Message": "The request is invalid.", "Errors": [{"Error": "Name is too long"}, {"Error": "Bad"}]}
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_json(body, status=400)
    with pytest.raises(errors.RejectedError) as caught:
        make_client().patch_item("A", {"Name": "x" * 600})
    assert caught.value.errors == ["Name is too long", "Bad"]
    assert caught.value.message == "The request is invalid."
    assert str(caught.value).startswith("Tweakwise PATCH /item/A answered 400: The request is invalid.")


def test_validation_error_with_a_plain_text_body(tweakwise, make_client):
    tweakwise.expect_request("/item", method="POST").respond_with_data("Bad things", status=400)
    with pytest.raises(errors.RejectedError, match="Bad things"):
        make_client().create_item({})


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, errors.NotFoundError), (409, errors.UnexpectedResponseError), (500, errors.ServerError)],
)
def test_statuses_map_to_typed_errors(tweakwise, make_client, status, error):
    tweakwise.expect_request("/category/5", method="DELETE").respond_with_data("", status=status)
    with pytest.raises(error, match=f"DELETE /category/5 answered {status}"):
        make_client(max_retries=0).delete_category(5)


def test_error_text_never_echoes_the_token(tweakwise, make_client):
    tweakwise.expect_request("/item", method="POST").respond_with_json(
        {"Message": f"token {ACCESS_TOKEN} is not allowed to do this"}, status=400
    )
    with pytest.raises(errors.RejectedError) as caught:
        make_client().create_item({})
    assert ACCESS_TOKEN not in str(caught.value)
    assert "***" in str(caught.value)


def test_upsert_item_patches_then_posts_on_404(tweakwise, make_client):
    tweakwise.expect_ordered_request("/item/A 1", method="PATCH").respond_with_data("", status=404)
    tweakwise.expect_ordered_request(
        "/item", method="POST", json={"ArticleNumber": "A 1", "Name": "N"}
    ).respond_with_json({})
    assert make_client().upsert_item("A 1", {"Name": "N"}) == "created"
    tweakwise.check_assertions()


def test_an_item_created_by_another_writer_between_patch_and_post_is_patched(tweakwise, make_client):
    # A snapshot batch (or a second delivery) created it between our PATCH and our POST.
    tweakwise.expect_ordered_request("/item/A", method="PATCH").respond_with_data("", status=404)
    tweakwise.expect_ordered_request("/item", method="POST").respond_with_json(
        {"Message": "Item already exists"}, status=400
    )
    tweakwise.expect_ordered_request("/item/A", method="PATCH", json={"Name": "N"}).respond_with_json({})
    assert make_client().upsert_item("A", {"Name": "N"}) == "updated"
    tweakwise.check_assertions()


def test_a_create_refused_for_its_body_is_rejected_after_one_more_patch(tweakwise, make_client):
    tweakwise.expect_ordered_request("/item/A", method="PATCH").respond_with_data("", status=404)
    tweakwise.expect_ordered_request("/item", method="POST").respond_with_json(
        {"Message": "The request is invalid.", "Errors": [{"Error": "Name is too long"}]}, status=400
    )
    tweakwise.expect_ordered_request("/item/A", method="PATCH").respond_with_data("", status=404)
    with pytest.raises(errors.RejectedError) as caught:
        make_client().upsert_item("A", {"Name": "N" * 999})
    assert "POST /item answered 400" in str(caught.value) and "Name is too long" in str(caught.value)
    tweakwise.check_assertions()


def test_upsert_item_existing_is_one_patch(tweakwise, make_client):
    tweakwise.expect_oneshot_request("/item/A", method="PATCH", json={"Name": "N"}).respond_with_json({})
    assert make_client().upsert_item("A", {"Name": "N"}) == "updated"
    tweakwise.check_assertions()


def test_category_endpoints(tweakwise, make_client):
    tweakwise.expect_request("/category/getbykey/shoes men").respond_with_json({"CategoryId": 10})
    tweakwise.expect_oneshot_request("/category/11", method="PATCH").respond_with_data("", status=404)
    tweakwise.expect_oneshot_request(
        "/category", method="POST", json={"CategoryId": 11, "Name": "W"}
    ).respond_with_json({})
    client = make_client()
    assert client.get_category_by_key("shoes men") == {"CategoryId": 10}
    assert client.upsert_category(11, {"Name": "W"}) == "created"
    tweakwise.expect_oneshot_request("/category/11", method="PATCH").respond_with_json({})
    assert client.upsert_category(11, {"Name": "W"}) == "updated"


def test_the_category_listing_is_a_list_or_a_clear_error(tweakwise, make_client):
    tweakwise.expect_oneshot_request("/category").respond_with_json([{"CategoryId": 7, "Key": "k"}, "noise"])
    assert make_client().list_categories() == [{"CategoryId": 7, "Key": "k"}]
    tweakwise.expect_oneshot_request("/category").respond_with_json({"Message": "paged?"})
    with pytest.raises(errors.UnexpectedResponseError, match="GET /category"):
        make_client().list_categories()


def test_delete_item_with_empty_204(tweakwise, make_client):
    tweakwise.expect_request("/item/A", method="DELETE").respond_with_data("", status=204)
    assert make_client().delete_item("A") is None


def test_tasks_use_the_instance_key_but_never_show_it(tweakwise, make_client):
    guid = "3f2b8a3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
    tweakwise.expect_request(f"/task/trigger/{INSTANCE_KEY}/{guid}").respond_with_json({"Started": True})
    tweakwise.expect_request(f"/task/status/{INSTANCE_KEY}/{guid}").respond_with_data("", status=500)
    client = make_client(max_retries=0)
    assert client.trigger_task(guid) == {"Started": True}
    with pytest.raises(errors.ServerError) as caught:
        client.task_status(guid)
    assert INSTANCE_KEY not in str(caught.value) and guid not in str(caught.value)
    assert "GET /task/status/{instance_key}/{task_guid} answered 500" in str(caught.value)


def test_non_json_success_body_is_returned_as_text(tweakwise, make_client):
    tweakwise.expect_request("/item/A").respond_with_data("OK", content_type="text/plain")
    assert make_client().request("GET", "/item/{item_id}", item_id="A") == "OK"


def test_unreadable_stats_answer_is_a_typed_error(tweakwise, make_client):
    tweakwise.expect_request("/stats/totalproducts").respond_with_json({"a": 1, "b": 2})
    with pytest.raises(errors.UnexpectedResponseError, match="GET /stats/totalproducts"):
        make_client().total_products()


def test_from_env_reads_settings_and_validates_them(monkeypatch):
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", "s")
    monkeypatch.setenv("TWEAKWISE_API_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("TWEAKWISE_READ_TIMEOUT", "7.5")
    client = TweakwiseClient.from_env()
    assert client.base_url == "http://127.0.0.1:1"
    assert client.read_timeout == 7.5
    monkeypatch.setenv("TWEAKWISE_READ_TIMEOUT", "soon")
    with pytest.raises(errors.ConfigurationError, match="TWEAKWISE_READ_TIMEOUT must be a number"):
        TweakwiseClient.from_env()
    monkeypatch.setenv("TWEAKWISE_READ_TIMEOUT", "-1")
    with pytest.raises(errors.ConfigurationError, match="TWEAKWISE_READ_TIMEOUT must be at least 0"):
        TweakwiseClient.from_env()
    monkeypatch.delenv("TWEAKWISE_READ_TIMEOUT")
    monkeypatch.setenv("TWEAKWISE_API_URL", "ftp://x")
    with pytest.raises(errors.ConfigurationError, match="TWEAKWISE_API_URL"):
        TweakwiseClient.from_env()


def test_a_create_answered_429_is_sent_again(tweakwise, make_client):
    seq = Sequence(_json({"Message": "slow down"}, status=429, headers={"Retry-After": "0"}), _json({}))
    tweakwise.expect_request("/item", method="POST").respond_with_handler(seq)
    make_client().create_item({"ArticleNumber": "A"})
    assert len(seq.requests) == 2


def test_a_create_answered_429_every_time_ends_as_rate_limited(tweakwise, make_client):
    seq = Sequence(_json({}, status=429, headers={"Retry-After": "0"}))
    tweakwise.expect_request("/category", method="POST").respond_with_handler(seq)
    with pytest.raises(errors.RateLimitedError, match="POST /category answered 429"):
        make_client(max_retries=2).create_category({"CategoryId": 1})
    assert len(seq.requests) == 3


def test_a_create_whose_connection_was_refused_is_sent_once_the_server_is_up(secrets):
    import socket

    from tweakwise.credentials import SecretCredentials

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # the port is free: connecting is refused until the server below binds it

    def serve_later():
        time.sleep(0.3)
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.timeout = 3
        server.handle_request()
        server.server_close()

    thread = threading.Thread(target=serve_later)
    thread.start()
    client = TweakwiseClient(
        SecretCredentials(SECRET_ID), f"http://127.0.0.1:{port}", max_retries=5, backoff_factor=0.2
    )
    client.create_item({"ArticleNumber": "A"})
    thread.join()
    assert [json.loads(r) for r in received] == [{"ArticleNumber": "A"}]


@pytest.mark.parametrize("item_id", [".", "..", ""])
def test_dot_segments_are_refused_before_anything_is_sent(tweakwise, make_client, item_id):
    with pytest.raises(errors.PathParameterError, match="cannot be sent as a path segment"):
        make_client().delete_item(item_id)
    assert tweakwise.log == []


@pytest.mark.parametrize(
    ("item_id", "sent"),
    [("a/..", "/item/a%2F.."), ("%2e%2e", "/item/%252e%252e"), ("%2F", "/item/%252F"), ("...", "/item/...")],
)
def test_ids_that_look_like_paths_stay_one_segment(sandbox, tasks_secret, item_id, sent):
    client = TweakwiseClient.from_env()
    assert client.upsert_item(item_id, {"Name": "N", "Price": 1.0, "Stock": 1}) == "created"
    assert set(sandbox.items) == {item_id}
    client.delete_item(item_id)
    assert sandbox.items == {}
    assert render_path("/item/{item_id}", item_id=item_id)[0] == sent


def test_every_field_of_an_error_is_scrubbed(tweakwise, make_client):
    from conftest import IMPORT_GUID

    echo = f"key {INSTANCE_KEY} token {ACCESS_TOKEN} task {IMPORT_GUID}"
    tweakwise.expect_request("/item", method="POST").respond_with_json(
        {"Message": echo, "Errors": [{"Error": echo}, echo]}, status=400
    )
    with pytest.raises(errors.RejectedError) as caught:
        make_client().create_item({})
    error = caught.value
    for text in (str(error), error.detail, error.message, *error.errors, *map(str, error.args)):
        assert INSTANCE_KEY not in text and ACCESS_TOKEN not in text and IMPORT_GUID not in text
        assert "***" in text


@pytest.mark.parametrize("as_json", [False, True], ids=["plain text", "json"])
def test_an_echoed_token_is_masked_before_the_answer_is_cut_wherever_it_straddles_the_cut(
    tweakwise, make_client, as_json
):
    from tweakwise.responses import MAX_DETAIL

    client = make_client()  # the first call reads the secret: its token is known from then on
    filler = "=" * MAX_DETAIL  # shares no 4 characters with the token
    seen = []
    for before in range(MAX_DETAIL - len(ACCESS_TOKEN) + 1, MAX_DETAIL + 1):
        text = filler[:before] + ACCESS_TOKEN + filler
        tweakwise.clear()
        if as_json:
            body = {"Message": text, "Errors": [{"Error": text}, text]}
            tweakwise.expect_request("/item", method="POST").respond_with_json(body, status=400)
        else:
            tweakwise.expect_request("/item", method="POST").respond_with_data(text, status=400)
        with pytest.raises(errors.RejectedError) as caught:
            client.create_item({})
        seen.append(str(caught.value))
    assert len(seen) == len(ACCESS_TOKEN)
    pieces = {ACCESS_TOKEN[i : i + 4] for i in range(len(ACCESS_TOKEN) - 3)}
    for shown in seen:
        assert not [piece for piece in pieces if piece in shown], shown
