"""Where the resources are: a deployed stack's outputs (CloudFormation), or `make run`'s, which resolves
the same outputs of template.yaml locally (`GET /_local/outputs`). Every command reads them by name."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tweakwise.settings import DEFAULT_API_URL

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # moto takes any


def iso_time(epoch: float | None) -> str | None:
    """An epoch time as the commands show it (None for 0 or None: never)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


class OpsError(Exception):
    """What went wrong and what to do about it: printed alone, exit status 2."""


@dataclass
class Stack:
    name: str
    outputs: dict[str, str]
    region: str
    endpoint_url: str | None = None  # make run's moto; None: AWS
    tweakwise_url: str = DEFAULT_API_URL
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise OpsError(
                f"stack {self.name} has no output {key}: deploy this version of template.yaml (sam deploy)"
            )
        return self.outputs[key]

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            local: Any = LOCAL_CREDENTIALS if self.endpoint_url else {}
            name: Any = service  # one of boto3's service names
            self._clients[service] = boto3.client(
                name, region_name=self.region, endpoint_url=self.endpoint_url, **local
            )
        return self._clients[service]

    @classmethod
    def deployed(cls, name: str, region: str | None) -> Stack:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        cloudformation = boto3.client("cloudformation", region_name=region)
        try:
            [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            raise OpsError(f"cannot read stack {name}: {exc} (check --stack and --region)") from None
        except BotoCoreError as exc:
            raise OpsError(f"cannot reach CloudFormation for stack {name}: {exc}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return cls(name, outputs, cloudformation.meta.region_name)

    @classmethod
    def local(cls, port: int) -> Stack:
        url = f"http://127.0.0.1:{port}/_local/outputs"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                found = json.load(answer)
        except (urllib.error.URLError, OSError) as exc:
            raise OpsError(f"nothing answers on {url} ({exc}): start `make run`, or give --stack") from None
        return cls(
            "make run", found["outputs"], found["region"], found["awsEndpointUrl"], found["tweakwiseApiUrl"]
        )
