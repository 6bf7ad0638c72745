"""Create, in moto, the secrets, queues and tables that template.yaml declares, and teach the Resolver
their local names, URLs and ARNs, so functions run locally with the environment the template gives them."""

from __future__ import annotations

import json
import secrets as random
from typing import Any, cast

from tweakwise_local.template import Resolver

# What a process running functions locally sets: fake credentials, the region, no instance metadata, no
# X-Ray daemon to send to.
LOCAL_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

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


def _queue(logical: str, props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    import boto3

    sqs = boto3.client("sqs")
    fifo = str(resolver.resolve(props.get("FifoQueue", False))).lower() == "true"
    attributes = {
        k: str(resolver.resolve(props[k])).lower() if isinstance(props[k], bool) else str(props[k])
        for k in QUEUE_ATTRIBUTES
        if k in props
    }
    url = sqs.create_queue(
        QueueName=f"{_stack(resolver)}-{logical}" + (".fifo" if fifo else ""),
        Attributes=cast(Any, attributes),  # names from the template, which cfn-lint checks
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": arn.rsplit(":", 1)[1]}


def _table(logical: str, props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    import boto3

    dynamodb = boto3.client("dynamodb")
    name = f"{_stack(resolver)}-{logical}"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode="PAY_PER_REQUEST",
    )
    return {"Ref": name, "Arn": dynamodb.describe_table(TableName=name)["Table"]["TableArn"]}


def _topic(logical: str, _props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    import boto3

    arn = boto3.client("sns").create_topic(Name=f"{_stack(resolver)}-{logical}")["TopicArn"]
    return {"Ref": arn, "TopicArn": arn, "TopicName": arn.rsplit(":", 1)[1]}


def _secret(logical: str, props: dict[str, Any], resolver: Resolver, value: dict | None) -> dict[str, Any]:
    """A given value, else a generated one (GenerateSecretString), else the template's SecretString."""
    import boto3

    if value is None and "GenerateSecretString" in props:
        spec = props["GenerateSecretString"]
        value = {
            **json.loads(spec.get("SecretStringTemplate", "{}")),
            spec["GenerateStringKey"]: random.token_hex(24),
        }
    if value is None:
        value = json.loads(resolver.resolve(props.get("SecretString", "{}")))
    name = f"{_stack(resolver)}/{logical}"
    arn = boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
    return {"Ref": arn, "Id": arn, "Value": value}


def _bucket(logical: str, _props: dict[str, Any], resolver: Resolver) -> dict[str, Any]:
    import boto3

    name = f"{_stack(resolver)}-{logical}".lower()
    boto3.client("s3").create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": cast(Any, resolver.PSEUDO["AWS::Region"])},
    )
    return {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}


def _stack(resolver: Resolver) -> str:
    return resolver.PSEUDO["AWS::StackName"]


CREATORS = {
    "AWS::SQS::Queue": _queue,
    "AWS::DynamoDB::Table": _table,
    "AWS::SNS::Topic": _topic,
    "AWS::S3::Bucket": _bucket,
}


def provision(
    template: dict[str, Any], resolver: Resolver, secret_values: dict[str, dict] | None = None
) -> None:
    """Create every supported resource in the current moto backend (mock_aws or a moto server)."""
    import boto3

    resources = {k: v for k, v in template["Resources"].items() if _active(v, resolver)}
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in CREATORS:
            resolver.resources[logical] = CREATORS[resource["Type"]](logical, props, resolver)
        elif resource["Type"] == "AWS::SecretsManager::Secret":
            value = (secret_values or {}).get(logical)
            resolver.resources[logical] = _secret(logical, props, resolver, value)
    sqs = boto3.client("sqs")
    for logical, resource in resources.items():  # after every queue exists, so dead-letter ARNs resolve
        policy = resource.get("Properties", {}).get("RedrivePolicy")
        if resource["Type"] == "AWS::SQS::Queue" and policy:
            redrive = json.dumps(resolver.resolve(policy))
            sqs.set_queue_attributes(
                QueueUrl=resolver.resources[logical]["Ref"], Attributes={"RedrivePolicy": redrive}
            )


def create_table(dynamodb: Any, name: str, variable: str) -> None:
    """The DynamoDB table the template names in `variable` (e.g. SYNC_STATE_TABLE), for tests and
    benchmarks, keyed as the template declares it."""
    from tweakwise_local.template import load_template, variable_target

    template = load_template()
    props = template["Resources"][variable_target(template, variable)]["Properties"]
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode="PAY_PER_REQUEST",
    )
