"""Create, in moto, the secrets, queues and tables that template.yaml declares, and teach the Resolver
their local names, URLs and ARNs, so functions run locally with the environment the template gives them."""

from __future__ import annotations

import json
import secrets as random
from typing import Any, cast

from tweakwise_local.template import Resolver

QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
)


def _active(resource: dict[str, Any], resolver: Resolver) -> bool:
    return "Condition" not in resource or resolver.condition(resource["Condition"])


def provision(
    template: dict[str, Any], resolver: Resolver, secret_values: dict[str, dict] | None = None
) -> None:
    """Create every supported resource in the current moto backend (mock_aws or a moto server)."""
    import boto3

    sqs, dynamodb, sm = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("secretsmanager")
    stack = resolver.PSEUDO["AWS::StackName"]
    resources = {k: v for k, v in template["Resources"].items() if _active(v, resolver)}
    redrives: dict[str, Any] = {}
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            fifo = str(resolver.resolve(props.get("FifoQueue", False))).lower() == "true"
            attributes = {
                k: str(resolver.resolve(props[k])).lower() if isinstance(props[k], bool) else str(props[k])
                for k in QUEUE_ATTRIBUTES
                if k in props
            }
            url = sqs.create_queue(
                QueueName=f"{stack}-{logical}" + (".fifo" if fifo else ""),
                Attributes=cast(Any, attributes),  # names from the template, which cfn-lint checks
            )["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            resolver.resources[logical] = {"Ref": url, "Arn": arn, "QueueName": arn.rsplit(":", 1)[1]}
            if "RedrivePolicy" in props:
                redrives[url] = props["RedrivePolicy"]
        elif kind == "AWS::DynamoDB::Table":
            name = f"{stack}-{logical}"
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode="PAY_PER_REQUEST",
            )
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            resolver.resources[logical] = {"Ref": name, "Arn": arn}
        elif kind == "AWS::SNS::Topic":
            arn = boto3.client("sns").create_topic(Name=f"{stack}-{logical}")["TopicArn"]
            resolver.resources[logical] = {"Ref": arn, "TopicArn": arn, "TopicName": arn.rsplit(":", 1)[1]}
        elif kind == "AWS::SecretsManager::Secret":
            value = (secret_values or {}).get(logical)
            if value is None and "GenerateSecretString" in props:
                spec = props["GenerateSecretString"]
                value = {
                    **json.loads(spec.get("SecretStringTemplate", "{}")),
                    spec["GenerateStringKey"]: random.token_hex(24),
                }
            if value is None:
                value = json.loads(resolver.resolve(props.get("SecretString", "{}")))
            arn = sm.create_secret(Name=f"{stack}/{logical}", SecretString=json.dumps(value))["ARN"]
            resolver.resources[logical] = {"Ref": arn, "Id": arn, "Value": value}
    for url, policy in redrives.items():  # after every queue exists, so dead-letter ARNs resolve
        resolved = resolver.resolve(policy)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(resolved)})


def create_sync_state_table(dynamodb: Any, name: str) -> None:
    """The sync state table as template.yaml declares it, for tests and benchmarks."""
    from tweakwise.settings import WorkerSettings
    from tweakwise_local.template import load_template, variable_target

    template = load_template()
    logical = variable_target(template, WorkerSettings.variable("sync_state_table"))
    props = template["Resources"][logical]["Properties"]
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode="PAY_PER_REQUEST",
    )
