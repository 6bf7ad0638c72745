"""Tweakwise tasks: trigger one (scheduled, or the state machine's first step) or read its status.

Event: {"task": "<name>"} or {"action": "trigger", "task": ...} triggers; {"action": "status", "task": ...,
"startedAt": <execution start>, "timeoutSeconds": n} reads the status for the state machine's loop.
"""

from tweakwise import tasks
from tweakwise.client import TweakwiseClient
from tweakwise.observability import logger_and_tracer

logger, tracer = logger_and_tracer()
client = TweakwiseClient.from_env(tracer)  # reads no secret, opens no connection until the first call


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    name = event.get("task")
    if not isinstance(name, str) or not name:
        raise ValueError('The event must name a task: {"task": "<name>"}')
    if event.get("action", "trigger") == "status":
        return tasks.status(client, name, event.get("startedAt"), event.get("timeoutSeconds")).as_dict()
    return tasks.trigger(client, name).as_dict()
