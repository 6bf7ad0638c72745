"""Runs one function the way the Lambda runtime does, in a process of its own: python3.13, the code and
the layer on read-only paths, the environment scripts/lambda_like.py builds. Standard library only: it
runs where only the function, the layer and the runtime's boto3 are importable.

    python3.13 lambda_driver.py REQUEST.json

REQUEST: {"events": [...], "out": "result.json", "timeout": 60, "memory": 256,
          "dynamodb_latency": null | seconds (the benchmarks' in-region DynamoDB stand-in),
          "sqs_latency": null | seconds (an SQS stand-in in place of the handler's `sqs` client)}
The result file gets {"init_ms", "invocations_ms": [...], "results": [...], "queued": [messages sent to the
SQS stand-in, as received messages]}: init is the handler module's
import (what Lambda's INIT phase runs), then each event is one invocation, the first one cold.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import uuid


class LambdaContext:
    function_version = "$LATEST"
    log_stream_name = "lambda-like"

    def __init__(self, name: str, memory: int, timeout: float):
        self.function_name = name
        self.memory_limit_in_mb = memory
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as file:
        request = json.load(file)
    started = time.perf_counter()
    app = importlib.import_module("app")
    init_ms = (time.perf_counter() - started) * 1000
    if request.get("dynamodb_latency") is not None:
        from standins import DynamoDBStandIn  # beside this script

        app.state.dynamodb = app.ledger.dynamodb = DynamoDBStandIn(request["dynamodb_latency"])
    queue = None
    if request.get("sqs_latency") is not None:
        from standins import SQSStandIn

        queue = app.sqs = SQSStandIn(request["sqs_latency"])
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    timings, results = [], []
    for event in request["events"]:
        # Lambda sets the trace header of each invocation in the environment.
        os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=1"
        context = LambdaContext(name, int(request.get("memory", 256)), float(request.get("timeout", 60)))
        began = time.perf_counter()
        results.append(app.lambda_handler(event, context))
        timings.append((time.perf_counter() - began) * 1000)
    with open(request["out"], "w", encoding="utf-8") as file:
        queued = queue.sent if queue else []
        json.dump(
            {"init_ms": init_ms, "invocations_ms": timings, "results": results, "queued": queued},
            file,
            default=str,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
