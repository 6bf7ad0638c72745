"""The native sources in template.yaml, as SAM translates it: off by default and then absent, one rule per
source that is on, a least-privilege source function, and two stacks side by side without a name clash."""

from __future__ import annotations

import json

import pytest

from tweakwise import source_commercetools, source_shopify
from tweakwise_local.template import Resolver, load_template, translate

TEMPLATE = load_template()
BUSES = {
    "CommercetoolsEventBusName": "aws.partner/commercetools.com/my-project/tweakwise",
    "ShopifyEventBusName": "aws.partner/shopify.com/1234567/tweakwise",
}
OFF = {"CommercetoolsEventBusName": "", "ShopifyEventBusName": ""}
SOURCE_CONDITIONS = {"HasSource", "HasCommercetools", "HasShopify"}


@pytest.fixture(scope="module")
def cfn():
    return translate(TEMPLATE, BUSES)["Resources"]


def _active(resources: dict, params: dict[str, str]) -> set[str]:
    resolver = Resolver(TEMPLATE, params)
    return {n for n, r in resources.items() if "Condition" not in r or resolver.condition(r["Condition"])}


def test_a_source_left_off_creates_nothing_and_no_function_permission(cfn):
    sourced = {n for n, r in cfn.items() if r.get("Condition") in SOURCE_CONDITIONS}
    assert {"CatalogSourceFunction", "CatalogSourceFunctionRole", "SourceMapTable", "SourceDeadLetterQueue",
            "CommercetoolsRule", "CommercetoolsRulePermission", "ShopifyRule", "ShopifyRulePermission",
            "CatalogSourceFunctionEventInvokeConfig"} <= sourced  # fmt: skip
    assert not sourced & _active(cfn, OFF)
    everything_else = json.dumps({n: r for n, r in cfn.items() if n not in sourced})
    for name in sourced:  # nothing that always exists refers to a source resource
        assert f'"{name}"' not in everything_else, name
    commercetools_only = _active(
        cfn, {**OFF, "CommercetoolsEventBusName": BUSES["CommercetoolsEventBusName"]}
    )
    assert {"CatalogSourceFunction", "CommercetoolsRule", "CommercetoolsRulePermission"} <= commercetools_only
    assert not {"ShopifyRule", "ShopifyRulePermission"} & commercetools_only


def test_each_rule_matches_its_partner_source_and_the_messages_its_mapping_knows(cfn):
    commercetools = cfn["CommercetoolsRule"]["Properties"]
    assert commercetools["EventBusName"] == {"Ref": "CommercetoolsEventBusName"}
    assert commercetools["EventPattern"]["source"] == [{"prefix": "aws.partner/commercetools.com/"}]
    assert commercetools["EventPattern"]["detail-type"] == list(source_commercetools.MESSAGE_TYPES)
    shopify = cfn["ShopifyRule"]["Properties"]
    assert shopify["EventPattern"]["source"] == [{"prefix": "aws.partner/shopify.com/"}]
    assert shopify["EventPattern"]["detail-type"] == ["shopifyWebhook"]
    assert shopify["EventPattern"]["detail"]["metadata"]["X-Shopify-Topic"] == list(source_shopify.TOPICS)
    for rule in (commercetools, shopify):
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["CatalogSourceFunction", "Arn"]}
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["SourceDeadLetterQueue", "Arn"]}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    for rule in ("CommercetoolsRule", "ShopifyRule"):
        permission = cfn[f"{rule}Permission"]["Properties"]
        assert permission["Principal"] == "events.amazonaws.com"
        assert permission["SourceArn"] == {"Fn::GetAtt": [rule, "Arn"]}


def test_the_source_function_may_send_to_its_queues_and_use_its_table_and_nothing_else(cfn):
    role = cfn["CatalogSourceFunctionRole"]["Properties"]
    assert sorted(role["ManagedPolicyArns"]) == [
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    ]
    granted = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            granted |= {(action, statement["Resource"]["Fn::GetAtt"][0]) for action in actions}
    assert granted == {
        ("sqs:SendMessage", "CatalogQueue"),
        ("sqs:SendMessage", "SourceDeadLetterQueue"),
        ("dynamodb:BatchGetItem", "SourceMapTable"),
        ("dynamodb:BatchWriteItem", "SourceMapTable"),
        ("dynamodb:UpdateItem", "SourceMapTable"),
    }
    invoke = cfn["CatalogSourceFunctionEventInvokeConfig"]["Properties"]
    assert invoke["MaximumRetryAttempts"] == 2


def test_the_source_has_the_alarms_the_other_functions_have(cfn):
    alarms = {
        r["Properties"]["AlarmName"]["Fn::Sub"] for r in cfn.values() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert "tweakwise-${InstanceName}-${Environment}-catalog-source-errors" in alarms
    assert "tweakwise-${InstanceName}-${Environment}-source-dead-letters" in alarms


class _Stack(Resolver):
    """Names as CloudFormation makes them for one stack: a generated name carries the stack's name."""

    def __init__(self, stack: str, params: dict[str, str]):
        super().__init__(TEMPLATE, params)
        self.PSEUDO = {**Resolver.PSEUDO, "AWS::StackName": stack}

    def resource_name(self, logical_id: str) -> str:
        return f"{self.PSEUDO['AWS::StackName']}-{logical_id}-GENERATED"


NAMES = ("AlarmName", "LogGroupName", "StateMachineName", "QueueName", "TableName", "BucketName", "RoleName")


def _names(resources: dict, stack: _Stack) -> set[str]:
    return {
        str(stack.resolve(resource["Properties"][key]))
        for name, resource in resources.items()
        if name in _active(resources, stack.params)
        for key in NAMES
        if key in resource.get("Properties", {})
    }


def test_two_stacks_one_per_tweakwise_instance_share_an_account_without_a_name_collision():
    # One stack per instance (docs/sources.md), both on the same partner buses, same environment.
    resources = translate(TEMPLATE, BUSES)["Resources"]
    nl = _Stack("tweakwise-nl", {**BUSES, "InstanceName": "nl", "CommercetoolsLocale": "nl-NL"})
    de = _Stack("tweakwise-de", {**BUSES, "InstanceName": "de", "CommercetoolsLocale": "de-DE"})
    first, second = _names(resources, nl), _names(resources, de)
    assert len(first) > 20  # every alarm, log group and the state machine are named
    assert not first & second, sorted(first & second)
    rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert all("Name" not in rule["Properties"] for rule in rules)  # generated, so per stack
