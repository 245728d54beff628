"""Create the DynamoDB tables exactly as template.yaml defines them, on any endpoint.

Tests and the local server build their tables from the template's own KeySchema, attributes,
indexes, stream and TTL, so that code and template cannot drift apart unnoticed.
"""

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short tags (!Ref, !GetAtt, !Sub ...) as plain data."""


def _tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"Fn::{tag_suffix}" if tag_suffix != "Ref" else "Ref": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


def table_resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }


def table_environment(template: dict[str, Any]) -> dict[str, str]:
    """Environment variable -> logical id of the table the template points it at."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    tables = table_resources(template)
    return {
        name: value["Ref"]
        for name, value in variables.items()
        if isinstance(value, dict) and value.get("Ref") in tables
    }


def create_tables(client: Any, prefix: str, template: dict[str, Any] | None = None) -> dict[str, str]:
    """Create every table of the template named `{prefix}{LogicalId}`; return the environment
    variables (SESSIONS_TABLE_NAME ...) that point the functions at them."""
    template = template or load_template()
    names = {}
    for logical_id, properties in table_resources(template).items():
        name = f"{prefix}{logical_id}"
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if properties.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        if properties.get("StreamSpecification"):
            view_type = properties["StreamSpecification"]["StreamViewType"]
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        client.create_table(**request)
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        names[logical_id] = name
    return {variable: names[logical_id] for variable, logical_id in table_environment(template).items()}
