"""The template grants each function exactly the DynamoDB actions it really calls.

The operations are recorded at the client while the real code runs (a new session, a duplicate,
a redrive), mapped to IAM actions and resources, and compared with template.yaml's policies: a
missing grant would fail in AWS only, an extra one would not be least privilege.
"""

from typing import Any

import pytest

from devtools.function_url import signed_webhook_event
from devtools.template_tables import load_template
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import WEBHOOK_SECRET

pytest_plugins = ("tests.integration.redrive_fixtures",)

_TRANSACTION_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
_ACTIONS = {"update_item": "UpdateItem", "put_item": "PutItem", "get_item": "GetItem", "query": "Query"}


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


def granted(function: str) -> set[tuple[str, str]]:
    grants = set()
    for policy in load_template()["Resources"][function]["Properties"]["Policies"]:
        if not isinstance(policy, dict) or "Statement" not in policy:
            continue  # the conditional secrets policy: not DynamoDB
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                for resource in resources:
                    grants.add((action, _logical(resource)))
    return grants


def _logical(resource: Any) -> str:
    if "Fn::GetAtt" in resource:  # !GetAtt SessionsTable.Arn
        return resource["Fn::GetAtt"].split(".")[0]
    if "Fn::Sub" in resource:  # !Sub "${SessionsTable.Arn}/index/RedriveIndex"
        table, rest = resource["Fn::Sub"].removeprefix("${").split(".Arn}")
        return table + rest
    raise AssertionError(f"unexpected resource {resource}")


@pytest.fixture
def logical_ids(tables):
    return {name: name.split("-", 1)[1] for name in tables.values()}


def test_the_webhook_is_granted_exactly_what_it_calls(
    env, app, invoke, recording_dynamodb, logical_ids, monkeypatch
):
    monkeypatch.setattr(app, "dynamodb", recording_dynamodb)
    event = stripe_event(session=checkout_session())

    for _ in range(2):  # a new session (provision + record the TikTok outcome), then a duplicate
        assert invoke(signed_webhook_event(event, WEBHOOK_SECRET)).status == 200

    assert needed(recording_dynamodb.calls, logical_ids) == granted("StripeWebhookFunction")


def test_the_redrive_is_granted_exactly_what_it_calls(
    redrive_env, pending, redrive, recording_dynamodb, tiktok_server, logical_ids
):
    pending(2)
    recording_dynamodb.calls.clear()

    assert redrive() == {"sent": 2}

    assert needed(recording_dynamodb.calls, logical_ids) == granted("TikTokRedriveFunction")
