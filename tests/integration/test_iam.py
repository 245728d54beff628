"""The template grants each function exactly what it calls, and each secret only to its reader.

The DynamoDB operations are recorded at the client while the real code runs (a new session, a
duplicate, the stream sender's sends, failures and replays, a redrive), mapped to IAM actions
and resources, and compared with template.yaml's policies: a missing grant would fail in AWS
only, an extra one would not be least privilege. The sender's explicit role is read statement by
statement: the stream, the failure queue, its logs and (when tracing is on) X-Ray, nothing more.
"""

import functools
import re
from typing import Any

import pytest

from devtools.function_url import signed_webhook_event
from devtools.template_tables import load_template
from tests.factories import checkout_session, invoice, stripe_event, subscription
from tests.integration.conftest import WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

WEBHOOK = "StripeWebhookFunction"
SENDER = "DeliverySenderFunction"
REDRIVE = "DeliveryRedriveFunction"

_TRANSACTION_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
_ACTIONS = {"update_item": "UpdateItem", "put_item": "PutItem", "get_item": "GetItem", "query": "Query"}
STREAM_ACTIONS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
NO_VALUE = {"Ref": "AWS::NoValue"}


def needed(calls: list[tuple[str, dict[str, Any]]], logical_ids: dict[str, str]) -> set[tuple[str, str]]:
    """(IAM action, resource) for every recorded call; resource = table logical id [/index/X]."""
    grants = set()
    for operation, request in calls:
        if operation == "transact_write_items":
            for item in request["TransactItems"]:
                [(kind, body)] = item.items()
                grants.add((f"dynamodb:{_TRANSACTION_ACTIONS[kind]}", logical_ids[body["TableName"]]))
        elif operation in _ACTIONS:
            resource = logical_ids[request["TableName"]]
            if request.get("IndexName"):
                resource += f"/index/{request['IndexName']}"
            grants.add((f"dynamodb:{_ACTIONS[operation]}", resource))
        else:
            raise AssertionError(f"unexpected DynamoDB operation {operation}")
    return grants


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(entries: list[Any]) -> list[tuple[dict[str, Any], str | None]]:
    """(statement, condition or None) for a policy's statements; a conditional statement
    (`!If [Condition, statement, !Ref AWS::NoValue]`) counts with each of its branches."""
    found = []
    for entry in entries:
        if isinstance(entry, dict) and "Fn::If" in entry:
            condition, *branches = entry["Fn::If"]
            found += [(branch, condition) for branch in branches if branch != NO_VALUE]
        else:
            found.append((entry, None))
    return found


def grants_of(policy_statements: list[tuple[dict[str, Any], str | None]]) -> set[tuple[str, str]]:
    """(action, resource logical id) for every Allow statement."""
    grants = set()
    for statement, _ in policy_statements:
        assert statement["Effect"] == "Allow", statement
        for action in _listed(statement["Action"]):
            for resource in _listed(statement["Resource"]):
                grants.add((action, _logical(resource)))
    return grants


def granted(function: str) -> set[tuple[str, str]]:
    """What a function's own role grants on DynamoDB (its managed secrets policy aside)."""
    return {
        grant for grant in grants_of(role_statements(role_of(function))) if grant[0].startswith("dynamodb:")
    }


ROLES = {WEBHOOK: "StripeWebhookRole", SENDER: "DeliverySenderRole", REDRIVE: "DeliveryRedriveRole"}
LOG_GROUPS = {
    WEBHOOK: "StripeWebhookLogGroup",
    SENDER: "DeliverySenderLogGroup",
    REDRIVE: "DeliveryRedriveLogGroup",
}


def role_of(function: str) -> str:
    return resources()[function]["Properties"]["Role"]["Fn::GetAtt"].split(".")[0]


def role_statements(role: str) -> list[tuple[dict[str, Any], str | None]]:
    found = []
    for policy in resources()[role]["Properties"]["Policies"]:
        found += statements(policy["PolicyDocument"]["Statement"])
    return found


def _logical(resource: Any) -> str:
    if resource == "*":
        return "*"
    if "Fn::GetAtt" in resource:  # !GetAtt SessionsTable.Arn, !GetAtt SessionsTable.StreamArn
        value = resource["Fn::GetAtt"]
        logical_id, attribute = value.split(".", 1) if isinstance(value, str) else value
        return logical_id if attribute == "Arn" else f"{logical_id}.{attribute}"
    if "Fn::Sub" in resource:  # !Sub "${SessionsTable.Arn}/index/RedriveIndex"
        table, rest = resource["Fn::Sub"].removeprefix("${").split(".Arn}")
        return table + rest
    raise AssertionError(f"unexpected resource {resource}")


@functools.cache
def template() -> dict[str, Any]:
    return load_template()


def resources() -> dict[str, Any]:
    return template()["Resources"]


def dynamodb_table_grants(grants: set[tuple[str, str]], tables: set[str]) -> set[tuple[str, str]]:
    """The grants on a table or one of its indexes (not on its stream)."""
    return {
        (action, resource)
        for action, resource in grants
        if action.startswith("dynamodb:") and resource.split("/")[0] in tables
    }


def named_parameters(policy: str) -> set[str]:
    """The template parameters a managed policy's resources are built from (${Name} in !Sub,
    !Ref, in either branch of a conditional resource), AWS's pseudo parameters aside."""
    names = set()
    for statement, _ in statements(resources()[policy]["Properties"]["PolicyDocument"]["Statement"]):
        for resource in _resources(statement["Resource"]):
            if "Fn::Sub" in resource:
                names |= set(re.findall(r"\$\{([A-Za-z0-9]+)\}", resource["Fn::Sub"]))
            elif "Ref" in resource:
                names.add(resource["Ref"])
    return names


def _resources(value: Any) -> list[Any]:
    """A statement's resources, a conditional one (`!If [Condition, resource, !Ref AWS::NoValue]`)
    counting with each branch."""
    found = []
    for resource in _listed(value):
        if isinstance(resource, dict) and "Fn::If" in resource:
            _, *branches = resource["Fn::If"]
            found += [branch for branch in branches if branch != NO_VALUE]
        else:
            found.append(resource)
    return found


def secret_policies(function: str) -> set[str]:
    """The managed policies a function (or its role) attaches, under whatever condition."""
    properties = resources()[function]["Properties"]
    if "Role" in properties:
        role = properties["Role"]["Fn::GetAtt"].split(".")[0]
        attached = resources()[role]["Properties"].get("ManagedPolicyArns", [])
    else:
        attached = [policy for policy in properties["Policies"] if "Statement" not in policy]
    refs = set()
    for entry in attached:
        for value, _ in statements([entry]):
            refs.add(value["Ref"])
    return refs


def sender_stream_events() -> list[dict[str, Any]]:
    """The sender's event source mappings: one (NewDeliveries), for every destination."""
    events = resources()[SENDER]["Properties"]["Events"].values()
    return [event for event in events if event["Type"] == "DynamoDB"]


def environment_of(function: str) -> dict[str, Any]:
    return resources()[function]["Properties"].get("Environment", {}).get("Variables", {})


@pytest.fixture
def logical_ids(tables):
    return {name: name.split("-", 1)[1] for name in tables.values()}


# ---------------------------------------------------------------------- DynamoDB, as called


def test_the_webhook_is_granted_exactly_what_it_calls(
    env, app, invoke, recording_dynamodb, logical_ids, monkeypatch
):
    # Renewals reported: a renewal also starts its own delivery (PutItem on Sessions).
    monkeypatch.setenv("RENEWAL_EVENT_NAME", "Subscribe")
    monkeypatch.setattr(app, "dynamodb", recording_dynamodb)
    customer, subscription_id = "cus_TestSubscriber0001", "sub_TestSubscription0001"
    session = checkout_session(mode="subscription", customer=customer, subscription=subscription_id)
    renewal = stripe_event(
        "invoice.paid",
        invoice(subscription=subscription_id, customer=customer, billing_reason="subscription_cycle"),
    )
    cancelled = stripe_event(
        "customer.subscription.deleted",
        subscription(id=subscription_id, customer=customer, status="canceled"),
    )
    events = [stripe_event(session=session)] * 2 + [renewal, renewal, cancelled]

    # A new subscription session (one transaction, which also links its subscription record),
    # a duplicate (the same transaction), a renewal and its redelivery, a cancellation
    for event in events:
        assert invoke(signed_webhook_event(event, WEBHOOK_SECRET)).status == 200

    assert recording_dynamodb.operations() == ["transact_write_items"] * 2 + [
        "update_item",
        "put_item",
        "update_item",  # the redelivered renewal: unchanged ...
        "get_item",  # ... looked for under the bare invoice id (a renewal of the previous version)
        "put_item",  # ... and found already started
        "update_item",
    ]
    [(_, transaction), *_] = recording_dynamodb.calls
    # The marker, the customer, TikTok's delivery, and the subscription record it links.
    assert [next(iter(item)) for item in transaction["TransactItems"]] == ["Put", "Put", "Put", "Update"]
    assert needed(recording_dynamodb.calls, logical_ids) == granted(WEBHOOK)
    assert granted(WEBHOOK) == {
        ("dynamodb:PutItem", "SessionsTable"),
        ("dynamodb:GetItem", "SessionsTable"),
        ("dynamodb:PutItem", "CustomersTable"),
        ("dynamodb:UpdateItem", "CustomersTable"),
    }


def test_the_sender_is_granted_exactly_the_table_actions_it_calls(
    env, deliver, stream, sender_app, recording_dynamodb, tiktok_server, logical_ids, monkeypatch
):
    # Given: three new deliveries, one of which TikTok will refuse, and the sender's client recorded
    monkeypatch.setattr(sender_app, "dynamodb", recording_dynamodb)
    sessions = [checkout_session() for _ in range(3)]
    for session in sessions:
        assert deliver(stripe_event(session=session)).status == 200
    refused = sessions[1]["id"]
    tiktok_server.refuse_event(refused)

    # When: the stream hands them to the sender (claim, POST, record sent or failed), and Lambda
    # delivers the same batch again (every claim refused: nothing to send)
    assert stream.drain() == 3
    [batch] = stream.invocations
    stream.invoke(batch.event)

    # Then: what it called is what its role grants on the tables, nothing more
    assert sorted(tiktok_server.accepted_event_ids()) == sorted(
        session["id"] for session in sessions if session["id"] != refused
    )
    assert refused in tiktok_server.event_ids()
    assert recording_dynamodb.operations() == ["update_item"] * (3 * 2 + 3)
    role = role_statements("DeliverySenderRole")
    assert needed(recording_dynamodb.calls, logical_ids) == dynamodb_table_grants(
        grants_of(role), set(logical_ids.values())
    )


def test_the_redrive_is_granted_exactly_what_it_calls(
    redrive_env, pending, redrive, recording_dynamodb, tiktok_server, logical_ids
):
    pending(2)
    recording_dynamodb.calls.clear()

    assert redrive() == {"sent": 2}

    assert needed(recording_dynamodb.calls, logical_ids) == granted(REDRIVE)


# ---------------------------------------------------------------------- each function's own role


@pytest.mark.parametrize("function", [WEBHOOK, SENDER, REDRIVE])
def test_each_function_runs_with_its_own_role_and_no_sam_policies(function):
    properties = resources()[function]["Properties"]
    role = resources()[ROLES[function]]["Properties"]

    assert properties["Role"] == {"Fn::GetAtt": f"{ROLES[function]}.Arn"}
    # SAM would add AWSLambdaBasicExecutionRole (every log group in the account) and, for a
    # stream, AWSLambdaDynamoDBExecutionRole (every stream).
    assert "Policies" not in properties
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]


@pytest.mark.parametrize("function", [WEBHOOK, SENDER, REDRIVE])
def test_each_function_writes_only_to_its_own_log_group(function):
    grants = grants_of(role_statements(ROLES[function]))

    assert resources()[function]["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": LOG_GROUPS[function]}
    assert {grant for grant in grants if grant[0].startswith("logs:")} == {
        ("logs:CreateLogStream", LOG_GROUPS[function]),
        ("logs:PutLogEvents", LOG_GROUPS[function]),
    }


@pytest.mark.parametrize("function", [WEBHOOK, REDRIVE])
def test_the_webhook_and_the_redrive_grant_nothing_else_but_conditional_tracing(function):
    grants = grants_of(role_statements(ROLES[function]))
    wildcard = [
        (statement, condition)
        for statement, condition in role_statements(ROLES[function])
        if "*" in _listed(statement["Resource"])
    ]

    assert {action.split(":")[0] for action, _ in grants} == {"dynamodb", "logs", "xray"}
    [(statement, condition)] = wildcard
    assert condition == "TracingOn"
    assert set(_listed(statement["Action"])) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_the_sender_role_reads_only_the_sessions_stream():
    grants = grants_of(role_statements("DeliverySenderRole"))
    mappings = sender_stream_events()

    assert len(mappings) == 1  # one for every destination's deliveries
    for stream_event in mappings:
        assert stream_event["Properties"]["Stream"] == {"Fn::GetAtt": "SessionsTable.StreamArn"}
    assert {grant for grant in grants if grant[0] in STREAM_ACTIONS} == {
        (action, "SessionsTable.StreamArn") for action in STREAM_ACTIONS
    }
    assert {grant for grant in grants if grant[1].endswith(".StreamArn")} == {
        (action, "SessionsTable.StreamArn") for action in STREAM_ACTIONS
    }


def test_the_sender_role_sends_only_to_its_failure_queue_and_writes_only_its_logs():
    grants = grants_of(role_statements("DeliverySenderRole"))
    sender = resources()[SENDER]["Properties"]
    destinations = [
        mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        for mapping in sender_stream_events()
    ]

    assert destinations == [{"Fn::GetAtt": "DeliverySenderFailureQueue.Arn"}]
    assert {grant for grant in grants if grant[0].startswith("sqs:")} == {
        ("sqs:SendMessage", "DeliverySenderFailureQueue")
    }
    assert sender["LoggingConfig"]["LogGroup"] == {"Ref": "DeliverySenderLogGroup"}
    assert {grant for grant in grants if grant[0].startswith("logs:")} == {
        ("logs:CreateLogStream", "DeliverySenderLogGroup"),
        ("logs:PutLogEvents", "DeliverySenderLogGroup"),
    }
    assert {action.split(":")[0] for action, _ in grants} == {"dynamodb", "sqs", "logs", "xray"}


def test_the_sender_role_grants_nothing_on_every_resource_but_conditional_tracing():
    wildcard = [
        (statement, condition)
        for statement, condition in role_statements("DeliverySenderRole")
        if "*" in _listed(statement["Resource"])
    ]

    assert len(wildcard) == 1
    [(statement, condition)] = wildcard
    assert condition == "TracingOn"  # X-Ray's actions have no resource-level permissions
    assert set(_listed(statement["Action"])) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert template()["Conditions"]["TracingOn"] == {"Fn::Equals": [{"Ref": "EnableTracing"}, "true"]}


# ---------------------------------------------------------------------- secrets, per function


SECRET_VARIABLES = (
    "TIKTOK_ACCESS_TOKEN",
    "META_ACCESS_TOKEN",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_KEY",
    "TIKTOK_TEST_EVENT_CODE",
    "META_TEST_EVENT_CODE",
)


def test_the_webhook_cannot_read_the_tiktok_token_or_the_stripe_api_key():
    assert secret_policies(WEBHOOK) == {"StripeSecretReadPolicy"}
    assert named_parameters("StripeSecretReadPolicy") == {"StripeWebhookSecretName", "SecretsKmsKeyArn"}
    variables = environment_of(WEBHOOK)
    assert not [
        name
        for name in variables
        if name.startswith(("TIKTOK_ACCESS_TOKEN", "META_ACCESS_TOKEN", "STRIPE_API_KEY"))
    ]
    # Nor the test event codes: read like the tokens, at send time only (the buyer never waits on them).
    assert not [name for name in variables if "TEST_EVENT_CODE" in name]
    assert {"STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET_NAME"} <= set(variables)
    shared = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert not [name for name in shared if name.startswith(SECRET_VARIABLES)]


@pytest.mark.parametrize("function", [SENDER, REDRIVE])
def test_the_sender_and_the_redrive_read_only_the_platform_tokens_and_the_stripe_api_key(function):
    # The line items are read at send time (the sender, the redrive), with the optional restricted
    # key; the webhook's secret is not theirs.
    assert secret_policies(function) == {"SenderSecretsReadPolicy"}
    assert named_parameters("SenderSecretsReadPolicy") == {
        "TikTokAccessTokenName",
        "MetaAccessTokenName",
        "StripeApiKeyName",
        "TikTokTestEventCodeName",
        "MetaTestEventCodeName",
        "SecretsKmsKeyArn",
    }
    variables = environment_of(function)
    assert not [name for name in variables if name.startswith("STRIPE_WEBHOOK_SECRET")]
    assert {
        "TIKTOK_ACCESS_TOKEN",
        "TIKTOK_ACCESS_TOKEN_NAME",
        "META_ACCESS_TOKEN",
        "META_ACCESS_TOKEN_NAME",
        "STRIPE_API_KEY",
        "STRIPE_API_KEY_NAME",
        "TIKTOK_TEST_EVENT_CODE",
        "TIKTOK_TEST_EVENT_CODE_NAME",
        "META_TEST_EVENT_CODE",
        "META_TEST_EVENT_CODE_NAME",
    } <= set(variables)
    assert variables["STRIPE_API_KEY_NAME"] == {"Ref": "StripeApiKeyName"}
    assert variables["TIKTOK_TEST_EVENT_CODE_NAME"] == {"Ref": "TikTokTestEventCodeName"}


def test_the_stripe_api_key_grant_exists_only_when_a_key_name_is_given():
    """An empty StripeApiKeyName (no key: no contents) must not grant `parameter` (every SSM
    parameter's ARN prefix) or `secret:-??????`."""
    conditional = []
    for statement, _ in statements(
        resources()["SenderSecretsReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    ):
        for resource in _listed(statement["Resource"]):
            if isinstance(resource, dict) and "StripeApiKeyName" in str(resource):
                conditional.append(resource)
    assert len(conditional) == 2  # SSM and Secrets Manager
    for resource in conditional:
        condition, _, otherwise = resource["Fn::If"]
        assert condition == "HasStripeApiKeyName" and otherwise == NO_VALUE
    meta = [
        resource
        for statement, _ in statements(
            resources()["SenderSecretsReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        )
        for resource in _listed(statement["Resource"])
        if isinstance(resource, dict) and "MetaAccessTokenName" in str(resource)
    ]
    assert [resource["Fn::If"][0] for resource in meta] == [
        "HasMetaAccessTokenName"
    ] * 2  # Meta may be unused
    for name in ("TikTokTestEventCodeName", "MetaTestEventCodeName"):  # empty: no test code, no grant
        codes = [
            resource
            for statement, _ in statements(
                resources()["SenderSecretsReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            )
            for resource in _listed(statement["Resource"])
            if isinstance(resource, dict) and name in str(resource)
        ]
        assert [(resource["Fn::If"][0], resource["Fn::If"][2]) for resource in codes] == [
            (f"Has{name}", NO_VALUE)
        ] * 2
    assert template()["Conditions"]["HasStripeApiKeyName"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "StripeApiKeyName"}, ""]}]
    }
