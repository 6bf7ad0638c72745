"""template.yaml as written and as SAM translates it: runtime, build, IAM scope, schedule, DLQs, alarms."""

from __future__ import annotations

import json
import re

import pytest

from tweakwise_local.template import ROOT, load_template, state_machine_definition, translate

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
TWEAKWISE_SECRET = {"Fn::If": ["CreateSecret", {"Ref": "TweakwiseSecret"}, {"Ref": "TweakwiseSecretArn"}]}
# Functions that call Tweakwise, and so may read its token; the webhook may not.
TWEAKWISE_FUNCTIONS = {
    "CatalogMonitorFunction",
    "CatalogWorkerFunction",
    "TaskRunnerFunction",
    "CatalogSnapshotFunction",
    "PublisherFunction",
}

# Functions that read no secret at all: the source function's events come on an AWS event bus.
SECRETLESS = {"CatalogSourceFunction"}


def _env(name: str) -> dict:
    return {**GLOBAL_ENV, **FUNCTIONS[name]["Properties"]["Environment"]["Variables"]}


@pytest.fixture(scope="module")
def cfn():
    return translate(TEMPLATE)["Resources"]


def _real(entry: dict) -> dict:
    """A conditional entry's real branch."""
    return entry["Fn::If"][1] if "Fn::If" in entry else entry


def _statements(role: dict) -> list[dict]:
    """The role's statements: inline policies, and the managed policies this template defines."""
    documents = [_real(entry)["PolicyDocument"] for entry in role["Properties"].get("Policies", [])]
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn:
            documents.append(RESOURCES[arn["Ref"]]["Properties"]["PolicyDocument"])
    return [_real(statement) for document in documents for statement in document["Statement"]]


def test_functions_run_python313_on_arm64_with_tracing_and_limits():
    glob = TEMPLATE["Globals"]["Function"]
    assert glob["Runtime"] == "python3.13"
    assert glob["Architectures"] == ["arm64"]
    assert glob["Tracing"] == "Active"
    assert isinstance(glob["MemorySize"], int) and isinstance(glob["Timeout"], int)
    assert glob["Layers"] == [{"Ref": "TweakwiseLayer"}]


def test_everything_builds_with_a_makefile_and_no_container():
    layer = RESOURCES["TweakwiseLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for name, function in FUNCTIONS.items():
        assert function["Metadata"]["BuildMethod"] == "makefile", name


def test_powertools_settings_keep_responses_and_events_out_of_traces_and_logs():
    assert GLOBAL_ENV["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert GLOBAL_ENV["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    for function in FUNCTIONS.values():
        assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]


def test_secret_id_is_the_parameter_or_the_created_secret():
    # Set once for every function; only the Tweakwise functions may read it (the IAM test below).
    assert GLOBAL_ENV["TWEAKWISE_SECRET_ID"] == TWEAKWISE_SECRET
    secret = RESOURCES["TweakwiseSecret"]
    assert secret["Condition"] == "CreateSecret"
    assert json.loads(secret["Properties"]["SecretString"]) == {
        "instance_key": "REPLACE_ME",
        "access_token": "REPLACE_ME",
    }
    assert TEMPLATE["Conditions"]["CreateSecret"] == {"Fn::Equals": [{"Ref": "TweakwiseSecretArn"}, ""]}
    assert TEMPLATE["Parameters"]["TweakwiseSecretArn"]["Default"] == ""


def test_no_parameter_carries_a_token():
    for name, parameter in TEMPLATE["Parameters"].items():
        assert "token" not in name.lower(), name
        assert "REPLACE_ME" not in str(parameter.get("Default", ""))


def test_each_function_may_read_its_one_secret_and_nothing_wider(cfn):
    for name in FUNCTIONS:
        statements = _statements(cfn[f"{name}Role"])
        secret_reads = [s for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
        if name in SECRETLESS:
            assert not secret_reads, name
            continue
        assert len(secret_reads) == 1, name
        resource = json.dumps(secret_reads[0]["Resource"])
        if name in TWEAKWISE_FUNCTIONS:
            assert '"Ref": "TweakwiseSecret"' in resource and '"Ref": "TweakwiseSecretArn"' in resource
        else:  # the webhook reads its signing secret, never the Tweakwise token
            assert resource == '{"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "WebhookSigningSecret"}}]}'
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert "*" not in json.dumps(statement["Action"]), (name, statement)
            assert statement["Resource"] != "*", (name, statement)
        kms = [s for s in statements if s["Action"] == "kms:Decrypt"]
        assert all(s["Condition"]["StringEquals"]["kms:ViaService"] for s in kms)


def _actions(cfn, name: str) -> dict[str, list]:
    """Action -> resources of a function's role, for the statements this template adds."""
    found: dict[str, list] = {}
    for statement in _statements(cfn[f"{name}Role"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            found.setdefault(action, []).append(statement["Resource"])
    return found


def test_webhook_is_a_throttled_logged_http_api_route_that_only_queues(cfn):
    api = RESOURCES["CatalogApi"]["Properties"]
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["CatalogApiAccessLogGroup", "Arn"]}
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "WebhookRateLimit"}
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "WebhookBurstLimit"}
    events = FUNCTIONS["CatalogWebhookFunction"]["Properties"]["Events"]
    assert [e["Properties"] for e in events.values()] == [
        {"ApiId": {"Ref": "CatalogApi"}, "Path": "/webhooks/catalog", "Method": "POST"}
    ]
    actions = _actions(cfn, "CatalogWebhookFunction")
    assert "sqs:SendMessage" in actions
    assert actions["sqs:SendMessage"] == [{"Fn::GetAtt": ["CatalogQueue", "Arn"]}]
    assert "DeadLetter" not in json.dumps(actions)
    assert not [a for a in actions if a.startswith("dynamodb:")]
    secret = RESOURCES["WebhookSigningSecret"]["Properties"]["GenerateSecretString"]
    assert secret["GenerateStringKey"] == "signing_secret" and secret["PasswordLength"] >= 32


def test_catalog_queue_is_high_throughput_fifo_with_a_dead_letter_queue():
    queue = RESOURCES["CatalogQueue"]["Properties"]
    assert queue["FifoQueue"] is True and queue["ContentBasedDeduplication"] is False
    assert queue["DeduplicationScope"] == "messageGroup"
    assert queue["FifoThroughputLimit"] == "perMessageGroupId"
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["CatalogDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    assert TEMPLATE["Parameters"]["MaxReceiveCount"]["Default"] == 5
    worker_timeout = FUNCTIONS["CatalogWorkerFunction"]["Properties"].get(
        "Timeout", TEMPLATE["Globals"]["Function"]["Timeout"]
    )
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    assert RESOURCES["CatalogDeadLetterQueue"]["Properties"]["FifoQueue"] is True
    alarm = _alarm("CatalogDeadLetterAlarm")
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["CatalogDeadLetterQueue", "QueueName"]}


def test_worker_reports_partial_failures_with_capped_concurrency(cfn):
    [source] = FUNCTIONS["CatalogWorkerFunction"]["Properties"]["Events"].values()
    assert source["Type"] == "SQS"
    props = source["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["CatalogQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}}
    assert _env("CatalogWorkerFunction")["WORKER_CONCURRENCY"] == {"Ref": "WorkerConcurrency"}
    actions = _actions(cfn, "CatalogWorkerFunction")
    ledger = {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert actions["dynamodb:UpdateItem"] == [{"Fn::GetAtt": ["SyncStateTable", "Arn"]}, ledger]
    assert actions["dynamodb:DeleteItem"] == [ledger]
    assert actions["sqs:SendMessage"] == [{"Fn::GetAtt": ["CatalogDeadLetterQueue", "Arn"]}]
    assert _env("CatalogWorkerFunction")["LEDGER_TABLE"] == {"Ref": "LedgerTable"}


def test_ledger_never_expires_and_can_be_restored():
    table = RESOURCES["LedgerTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "entity", "KeyType": "HASH"}]
    assert "TimeToLiveSpecification" not in table  # what Tweakwise holds does not expire
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_stale_guard_table_expires_entries_and_can_be_restored():
    table = RESOURCES["SyncStateTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "entity", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_monitor_runs_on_an_eventbridge_scheduler_schedule_with_retries_and_dlq(cfn):
    [schedule] = [
        r
        for r in cfn.values()
        if r["Type"] == "AWS::Scheduler::Schedule"
        and r["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["CatalogMonitorFunction", "Arn"]}
    ]
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"Ref": "MonitorScheduleExpression"}
    assert props["ScheduleExpressionTimezone"] == {"Ref": "MonitorScheduleTimezone"}
    assert props["State"] == {"Ref": "MonitorScheduleState"}
    assert "Name" not in props  # generated, so two stacks can share an account
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["CatalogMonitorFunction", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["CatalogMonitorDeadLetterQueue", "Arn"]}
    assert json.loads(target["Input"]) == json.loads((ROOT / "events" / "catalog_monitor.json").read_text())
    role = cfn[target["RoleArn"]["Fn::GetAtt"][0]]
    actions = sorted(s["Action"] for s in _statements(role))
    assert actions == ["lambda:InvokeFunction", "sqs:SendMessage"]


def test_monitor_function_failures_go_to_a_dead_letter_queue(cfn):
    function = cfn["CatalogMonitorFunction"]["Properties"]
    assert function["DeadLetterConfig"]["TargetArn"] == {
        "Fn::GetAtt": ["CatalogMonitorDeadLetterQueue", "Arn"]
    }
    invoke_config = cfn["CatalogMonitorFunctionEventInvokeConfig"]["Properties"]
    assert 0 <= invoke_config["MaximumRetryAttempts"] <= 2
    queue = RESOURCES["CatalogMonitorDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_function_has_a_log_group_with_retention():
    groups = [r for r in RESOURCES.values() if "LogGroupName" in r.get("Properties", {})]
    for name in FUNCTIONS:
        [group] = [
            g for g in groups if g["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}
        ]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _alarm(name):
    alarm = RESOURCES[name]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    return alarm["Properties"]


def test_alarm_on_product_count_below_the_minimum():
    props = _alarm("ProductCountLowAlarm")
    assert props["MetricName"] == "TotalProducts"
    assert props["Namespace"] == {"Ref": "MetricsNamespace"}
    assert props["Dimensions"][0] == {"Name": "Instance", "Value": {"Ref": "InstanceName"}}
    assert props["Threshold"] == {"Ref": "MinProductCount"}
    assert props["ComparisonOperator"] == "LessThanThreshold"


def _evaluate(expression: str, previous: float, current: float) -> float:
    """Evaluate the alarm's metric math for two datapoints, so the formula itself is tested."""
    diff = current - previous
    python = expression.replace("DIFF(products)", f"({diff})").replace("products", f"({current})")
    match = re.fullmatch(r"IF\((.*) > 0, (.*), 0\)", python)
    condition, value = match.groups()
    return eval(value) if eval(condition) > 0 else 0  # noqa: S307 - our own template text


def test_alarm_on_product_count_drop_uses_metric_math():
    props = _alarm("ProductCountDropAlarm")
    [expression] = [m for m in props["Metrics"] if m.get("ReturnData")]
    assert "DIFF(products)" in expression["Expression"]
    assert _evaluate(expression["Expression"], 1000, 700) == pytest.approx(30)
    assert _evaluate(expression["Expression"], 1000, 1200) == pytest.approx(-20)
    assert _evaluate(expression["Expression"], 0, 50) == 0
    assert props["Threshold"] == {"Ref": "MaxProductDropPercent"}
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] >= 2  # DIFF needs the previous period in the window


def test_alarm_when_the_monitor_stops_reporting():
    props = _alarm("MonitorNotReportingAlarm")
    assert props["MetricName"] == "TotalProducts"
    assert props["TreatMissingData"] == "breaching"
    assert props["Period"] == {"Ref": "AlarmPeriodSeconds"}


def test_dead_letters_and_errors_alarm_too():
    assert _alarm("CatalogMonitorDeadLetterAlarm")["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["CatalogMonitorDeadLetterQueue", "QueueName"]
    }
    assert _alarm("CatalogMonitorErrorsAlarm")["MetricName"] == "Errors"


def test_alarm_email_subscription_is_optional():
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"


def test_every_template_wide_checkov_skip_carries_its_reason():
    config = (ROOT / ".checkov.yaml").read_text(encoding="utf-8")
    skips = re.findall(r"^  - (CKV_\w+) # (.*)$", config, flags=re.M)
    assert {check for check, _ in skips} == {"CKV_AWS_117", "CKV_AWS_173", "CKV_AWS_158", "CKV_AWS_27"}
    assert all(len(reason) > 40 for _, reason in skips)
    assert len(re.findall(r"^  - CKV", config, flags=re.M)) == len(skips)  # none without a reason


def test_every_linter_suppression_carries_its_reason():
    for name, resource in RESOURCES.items():
        metadata = resource.get("Metadata", {})
        for skip in metadata.get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, (name, skip)
        ignored = metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", [])
        for rule in ignored:
            assert len(metadata.get("SuppressionReasons", {}).get(rule, "")) > 20, (name, rule)


def test_every_env_var_the_code_reads_and_every_parameter_is_documented():
    page = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    for variable in {v for name in FUNCTIONS for v in _env(name)}:
        assert f"`{variable}`" in page, variable
    for parameter in TEMPLATE["Parameters"]:
        assert f"| `{parameter}` |" in page, parameter


def _resolve(value, conditions: dict[str, bool]):
    """`value` with every Fn::If decided by the given condition values."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            name, yes, no = value["Fn::If"]
            return _resolve(yes if conditions[name] else no, conditions)
        return {k: _resolve(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, conditions) for v in value]
    return value


@pytest.mark.parametrize("tracking", [True, False])
def test_each_task_has_one_schedule_targeting_the_state_machine_or_the_function(tracking):
    schedules = [
        _resolve(r["Properties"], {"TrackTasks": tracking})
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    inputs = [
        json.loads(
            s["Target"]["Input"]["Fn::Sub"]
            .replace("${TaskPollSeconds}", "60")
            .replace("${TaskTimeoutSeconds}", "7200")
        )
        for s in schedules
    ]
    assert sorted(i["task"] for i in inputs) == ["import", "publish"]
    # the state machine reads its numbers from the input (the task runner ignores them)
    assert all(i["pollSeconds"] == 60 and i["timeoutSeconds"] == 7200 for i in inputs)
    for schedule in schedules:
        target = schedule["Target"]
        expected = {"Ref": "TaskStateMachine"} if tracking else {"Fn::GetAtt": ["TaskRunnerFunction", "Arn"]}
        assert target["Arn"] == expected
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["TaskDeadLetterQueue", "Arn"]}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert schedule["ScheduleExpressionTimezone"] == {"Ref": "TaskScheduleTimezone"}
        assert schedule["State"]["Ref"].endswith("TaskScheduleState")
        assert schedule["ScheduleExpression"]["Ref"].endswith("TaskScheduleExpression")


def test_every_queue_accepts_tls_only():
    queues = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"}
    policies = {n: r["Properties"] for n, r in RESOURCES.items() if r["Type"] == "AWS::SQS::QueuePolicy"}
    assert {q["Ref"] for p in policies.values() for q in p["Queues"]} == queues
    for policy in policies.values():
        statement = policy["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny" and statement["Action"] == "sqs:*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert {r["Fn::GetAtt"][0] for r in resources} == {q["Ref"] for q in policy["Queues"]}
    # The source dead-letter queue exists with the source function only: its own, conditional policy.
    assert RESOURCES["SourceQueuePolicy"]["Condition"] == "HasSource"
    policy = policies["QueuesPolicy"]
    _statement, dead_letters = policy["PolicyDocument"]["Statement"]
    # EventBridge may dead-letter the snapshot rule's failed deliveries, from that rule only
    assert dead_letters["Principal"] == {"Service": "events.amazonaws.com"}
    assert dead_letters["Action"] == "sqs:SendMessage"
    assert dead_letters["Resource"] == {"Fn::GetAtt": ["TaskDeadLetterQueue", "Arn"]}
    assert dead_letters["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["SnapshotUploadedRule", "Arn"]}}
    }


def test_stack_tags_come_from_samconfig():
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "dev", "prod"):
        tags = dict(t.split("=") for t in config[env]["deploy"]["parameters"]["tags"].split())
        assert tags["project"] == "tweakwise-serverless"
        assert tags["environment"] == ("prod" if env == "prod" else "dev")
    assert "Tags" not in json.dumps(TEMPLATE["Globals"])


def test_task_roles_are_scoped():
    scheduler = RESOURCES["TaskSchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {s["Action"]: s["Resource"] for s in scheduler} == {
        "lambda:InvokeFunction": {"Fn::GetAtt": ["TaskRunnerFunction", "Arn"]},
        "states:StartExecution": {"Ref": "TaskStateMachine"},
        "sqs:SendMessage": {"Fn::GetAtt": ["TaskDeadLetterQueue", "Arn"]},
    }
    machine = RESOURCES["TaskStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    scoped = {s["Action"]: s for s in machine if isinstance(s["Action"], str)}
    assert scoped["sns:Publish"]["Resource"] == {"Ref": "AlarmTopic"}
    assert scoped["cloudwatch:PutMetricData"]["Condition"]["StringEquals"]["cloudwatch:namespace"] == {
        "Ref": "MetricsNamespace"
    }
    [unscoped] = [s for s in machine if isinstance(s["Action"], list)]
    assert all(a.startswith(("logs:", "xray:")) for a in unscoped["Action"])  # AWS offers no scope for these


def test_state_machine_logs_errors_without_execution_data_and_traces():
    props = RESOURCES["TaskStateMachine"]["Properties"]
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert props["TracingConfiguration"]["Enabled"] is True
    # Substitutions are text: numbers reach the definition through the execution input instead.
    assert all("Seconds" not in name for name in props["DefinitionSubstitutions"])
    states = state_machine_definition(TEMPLATE, "TaskStateMachine")["States"]
    assert {"Trigger", "Wait", "Status", "Finished?", "CountFailure", "Notify"} <= set(states)


def test_task_alarms_notify_the_topic():
    assert _alarm("TaskFailuresAlarm")["MetricName"] == "TaskFailures"
    assert _alarm("TaskDeadLetterAlarm")["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["TaskDeadLetterQueue", "QueueName"]
    }
    assert _alarm("TaskStateMachineFailedAlarm")["Namespace"] == "AWS/States"
    assert _alarm("PublishFailuresAlarm")["MetricName"] == "PublishFailures"


def test_publisher_runs_every_interval_and_reads_and_writes_the_sync_state(cfn):
    [event] = FUNCTIONS["PublisherFunction"]["Properties"]["Events"].values()
    assert event["Properties"]["ScheduleExpression"] == {"Fn::Sub": "rate(${PublishIntervalMinutes} minutes)"}
    assert TEMPLATE["Parameters"]["PublishIntervalMinutes"]["MinValue"] >= 2  # "rate(1 minutes)" is invalid
    actions = _actions(cfn, "PublisherFunction")
    assert (
        actions["dynamodb:GetItem"]
        == actions["dynamodb:UpdateItem"]
        == actions["dynamodb:DeleteItem"]  # the publish sample, carried to the publish
        == [{"Fn::GetAtt": ["SyncStateTable", "Arn"]}]
    )


def test_publish_verification_reads_the_ledger_notifies_the_alarm_topic_and_puts_on_the_default_bus(cfn):
    actions = _actions(cfn, "PublisherFunction")
    assert actions["dynamodb:BatchGetItem"] == [{"Fn::GetAtt": ["LedgerTable", "Arn"]}]
    assert actions["sns:Publish"] == [{"Ref": "AlarmTopic"}]
    default_bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    assert actions["events:PutEvents"] == [{"Fn::Sub": default_bus}]
    mine = {a for a in actions if not a.startswith(("logs:", "xray:", "sqs:", "secretsmanager:", "kms:"))}
    assert mine == {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem",
                    "sns:Publish", "events:PutEvents"}  # fmt: skip
    env = _env("PublisherFunction")
    assert env["PUBLISH_VERIFY_SAMPLE"] == _env("CatalogWorkerFunction")["PUBLISH_VERIFY_SAMPLE"]


def test_the_webhook_and_the_worker_metrics_are_watched():
    api = _alarm("CatalogApi5xxAlarm")
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert api["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "CatalogApi"}}]
    for name, metric in (
        ("CatalogWebhookErrorsAlarm", "Errors"),
        ("CatalogWebhookThrottlesAlarm", "Throttles"),
    ):
        alarm = _alarm(name)
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CatalogWebhookFunction"}}]
    worker_dimensions = [
        {"Name": "Instance", "Value": {"Ref": "InstanceName"}},
        {"Name": "service", "Value": _env("CatalogWorkerFunction")["POWERTOOLS_SERVICE_NAME"]},
    ]
    stale = _alarm("StaleEventsAlarm")
    assert stale["MetricName"] == "StaleEventsSkipped" and stale["Threshold"] == {"Ref": "MaxStaleEvents"}
    assert stale["Dimensions"] == worker_dimensions
    mark = _alarm("PublishMarkFailuresAlarm")
    assert mark["MetricName"] == "PublishMarkFailures" and mark["Dimensions"] == worker_dimensions
    lag = _alarm("SyncLagAlarm")
    assert (lag["MetricName"], lag["ExtendedStatistic"]) == ("SyncLagSeconds", "p99")
    assert lag["Threshold"] == {"Ref": "SyncLagAlarmSeconds"} and lag["Dimensions"] == worker_dimensions
    for name in ("CatalogApi5xxAlarm", "StaleEventsAlarm", "PublishMarkFailuresAlarm"):
        assert _alarm(name)["Namespace"] != "AWS/ApiGateway" or name == "CatalogApi5xxAlarm"
        assert RESOURCES[name]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


# -- whole-catalog snapshots ---------------------------------------------------------------------------

SNAPSHOT_DEFINITION = state_machine_definition(TEMPLATE, "SnapshotStateMachine")


def _sub(text: str) -> dict:
    return {"Fn::Sub": text}


def test_snapshot_bucket_is_private_encrypted_tls_only_and_expires():
    props = RESOURCES["SnapshotBucket"]["Properties"]
    assert (
        all(props["PublicAccessBlockConfiguration"].values())
        and len(props["PublicAccessBlockConfiguration"]) == 4
    )
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [expiry] = props["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == {"Ref": "SnapshotRetentionDays"} and "Prefix" not in expiry
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    [deny] = RESOURCES["SnapshotBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_an_upload_under_snapshots_starts_the_state_machine_with_a_dead_letter_queue():
    props = RESOURCES["SnapshotUploadedRule"]["Properties"]
    assert props["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": "SnapshotBucket"}]},
            "object": {"key": [{"prefix": "snapshots/"}]},
        },
    }
    [target] = props["Targets"]
    assert target["Arn"] == {"Ref": "SnapshotStateMachine"}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["TaskDeadLetterQueue", "Arn"]}}
    [statement] = RESOURCES["SnapshotRuleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": {"Ref": "SnapshotStateMachine"},
    }


def test_the_snapshot_function_reaches_only_its_prefixes_and_tables(cfn):
    actions = _actions(cfn, "CatalogSnapshotFunction")
    bucket = "${SnapshotBucket.Arn}"
    assert actions["s3:GetObject"] == [[_sub(f"{bucket}/{p}/*") for p in ("snapshots", "dry-runs", "runs")]]
    assert actions["s3:PutObject"] == [[_sub(f"{bucket}/runs/*"), _sub(f"{bucket}/reports/*")]]
    assert actions["s3:ListBucket"] == [{"Fn::GetAtt": ["SnapshotBucket", "Arn"]}]
    assert "s3:DeleteObject" not in actions
    ledger, state = {"Fn::GetAtt": ["LedgerTable", "Arn"]}, {"Fn::GetAtt": ["SyncStateTable", "Arn"]}
    assert actions["dynamodb:Scan"] == [ledger] and actions["dynamodb:BatchGetItem"] == [ledger]
    assert actions["dynamodb:GetItem"] == [state] and actions["dynamodb:UpdateItem"] == [state, ledger]
    listing = [s for s in _statements(cfn["CatalogSnapshotFunctionRole"]) if s["Action"] == "s3:ListBucket"]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": "runs/*"}}
    env = _env("CatalogSnapshotFunction")
    assert env["SNAPSHOT_BUCKET"] == {"Ref": "SnapshotBucket"} and env["LEDGER_TABLE"] == {
        "Ref": "LedgerTable"
    }
    assert FUNCTIONS["CatalogSnapshotFunction"]["Properties"]["Timeout"] == 900


def test_the_state_machine_role_is_scoped_to_its_function_bucket_prefixes_and_itself():
    statements = RESOURCES["SnapshotStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    by_action = {json.dumps(s["Action"]): s["Resource"] for s in statements}
    assert by_action['"s3:GetObject"'] == _sub("${SnapshotBucket.Arn}/runs/*")
    assert "results/*" in json.dumps(
        by_action['["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]']
    )
    assert by_action['"states:StartExecution"'] == _sub(
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-snapshots"
    )
    assert RESOURCES["SnapshotStateMachine"]["Properties"]["StateMachineName"] == _sub(
        "${AWS::StackName}-snapshots"
    )
    assert by_action['"sns:Publish"'] == {"Ref": "AlarmTopic"}


def test_items_and_orphans_run_in_distributed_maps_with_batches_retries_and_results():
    states = SNAPSHOT_DEFINITION["States"]
    for name, action in (("Items", "apply"), ("DeleteOrphans", "delete")):
        state = states[name]
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
        assert state["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
        assert state["ItemBatcher"]["MaxItemsPerBatchPath"] == "$.snapshot.batchSize"
        assert state["ItemBatcher"]["BatchInput"]["action"] == action
        assert state["MaxConcurrencyPath"] == "$.snapshot.mapConcurrency"
        assert state["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
        [task] = state["ItemProcessor"]["States"].values()
        [retry] = task["Retry"]
        assert retry["MaxAttempts"] >= 3 and retry["BackoffRate"] == 2 and retry["JitterStrategy"] == "FULL"
        assert state["Catch"][0]["Next"] == "Failed"
    assert states["Items"]["ToleratedFailurePercentagePath"] == "$.snapshot.toleratedFailurePercent"


def test_every_way_a_snapshot_is_not_applied_notifies_and_ends_in_a_named_failure():
    states = SNAPSHOT_DEFINITION["States"]
    fails = {name for name, state in states.items() if state["Type"] == "Fail"}
    assert fails == {"SnapshotRefused", "SnapshotShrinkGuard", "SnapshotFailed"}
    assert states["Outcome?"]["Default"] == "Notify" and states["Notify"]["Next"] == "Which?"
    assert states["Notify"]["Resource"] == "arn:aws:states:::sns:publish"
    for name in ("Validate", "Categories", "Items", "Orphans", "DeleteOrphans"):
        assert states[name]["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    alarm = RESOURCES["SnapshotFailedAlarm"]["Properties"]
    assert alarm["MetricName"] == "ExecutionsFailed" and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "SnapshotStateMachine"}}]


def test_snapshot_definition_substitutions_cover_every_placeholder():
    import re

    props = RESOURCES["SnapshotStateMachine"]["Properties"]
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(SNAPSHOT_DEFINITION)))
    assert used == set(props["DefinitionSubstitutions"])


def test_the_worker_memory_is_a_parameter_with_the_measured_default():
    worker = RESOURCES["CatalogWorkerFunction"]["Properties"]
    assert worker["MemorySize"] == {"Ref": "WorkerMemorySize"}
    parameter = TEMPLATE["Parameters"]["WorkerMemorySize"]
    assert parameter["Default"] == 512 and parameter["MinValue"] == 128  # docs/benchmarks.md, README
    assert TEMPLATE["Globals"]["Function"]["MemorySize"] == 256


def test_the_webhook_memory_is_a_parameter_with_the_measured_default():
    webhook = RESOURCES["CatalogWebhookFunction"]["Properties"]
    assert webhook["MemorySize"] == {"Ref": "WebhookMemorySize"}
    parameter = TEMPLATE["Parameters"]["WebhookMemorySize"]
    assert parameter["Default"] == 1024 and parameter["MinValue"] == 128  # docs/benchmarks.md, README


def test_call_tracing_is_a_switch_and_a_proxy_url_is_never_echoed():
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TRACE_CALLS"] == {"Ref": "TraceCalls"}
    assert TEMPLATE["Parameters"]["TraceCalls"]["Default"] == "false"
    assert TEMPLATE["Globals"]["Function"]["Tracing"] == "Active"  # every invocation is traced either way
    assert variables["TWEAKWISE_PROXY_URL"] == {"Ref": "TweakwiseProxyUrl"}
    assert TEMPLATE["Parameters"]["TweakwiseProxyUrl"]["NoEcho"] is True


def test_no_cold_start_scans_the_installed_packages_for_pydantic_plugins():
    # pydantic reads this itself; "__all__" turns off its entry-point scan (the bundle has no plugin).
    assert GLOBAL_ENV["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
