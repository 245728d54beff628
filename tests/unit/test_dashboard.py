"""The CloudWatch dashboard of template.yaml: valid JSON once CloudFormation substitutes it, the
widgets the operator is promised, and only metrics the code emits (so it cannot drift)."""

import json
import re
from pathlib import Path

import pytest

from checkout_conversions.destinations.meta.match_keys import USER_DATA_KEYS
from checkout_conversions.destinations.tiktok.match_keys import USER_KEYS
from devtools.template_tables import load_template

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
LABELS = ("TikTok", "Meta")
# What Lambda itself publishes, and for which of the template's functions the dashboard reads it.
LAMBDA_METRICS = {
    ("Url5xxCount", "StripeWebhookFunction"),
    ("Duration", "StripeWebhookFunction"),
    ("IteratorAge", "DeliverySenderFunction"),
}
WIDGETS = [
    "Webhook answers by kind",
    "Webhook duration p50 / p99 (ms)",
    "TikTok deliveries by state",
    "Meta deliveries by state",
    "Delivery lag p50 / p99 (s): payment to the platform's acceptance",
    "TikTok match-key coverage (% of sent events carrying each key)",
    "Meta match-key coverage (% of sent events carrying each key)",
    "Redrive backlog (due deliveries found per run)",
    "Sender iterator age (ms behind the Sessions stream)",
]


def emitted_metrics():
    """Every custom metric name the functions' code can emit: count("X") / seconds("X"), with
    f-strings over a destination's label, and one <Label>MatchKey<Key> per match key."""
    names = set()
    for source in FUNCTIONS.rglob("*.py"):
        for name in re.findall(r"\b(?:count|seconds)\(\s*f?\"([^\"]+)\"", source.read_text()):
            if "MatchKey{" in name:
                continue  # below, from the match keys themselves
            if "{" not in name:
                names.add(name)
                continue
            assert re.fullmatch(r"\{[a-z_.]*label\}\w+", name), f"{source}: {name}"
            names.update(re.sub(r"\{[^}]*\}", label, name) for label in LABELS)
    for label, keys in (("TikTok", USER_KEYS), ("Meta", USER_DATA_KEYS)):
        names.update(f"{label}MatchKey{key.title().replace('_', '')}" for key in keys)
    return names


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def dashboard(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    variables = set(re.findall(r"\$\{([^}]+)\}", body))
    resources = template["Resources"]
    assert variables <= {"AWS::Region"} | set(resources), variables - set(resources)
    for variable in variables:
        body = body.replace(
            "${" + variable + "}", "us-east-1" if variable == "AWS::Region" else f"<{variable}>"
        )
    return json.loads(body)


def metric_rows(widget):
    return [row for row in widget["properties"]["metrics"] if isinstance(row[0], str)]


def test_the_dashboard_has_the_promised_widgets(dashboard):
    assert [widget["properties"]["title"] for widget in dashboard["widgets"]] == WIDGETS
    for widget in dashboard["widgets"]:
        assert widget["type"] == "metric" and widget["properties"]["region"] == "us-east-1"
        assert widget["x"] + widget["width"] <= 24


def test_every_metric_on_the_dashboard_is_one_the_code_or_lambda_emits(dashboard):
    emitted = emitted_metrics()
    for widget in dashboard["widgets"]:
        for row in metric_rows(widget):
            namespace, name, dimension, value = row[:4]
            if namespace == "CheckoutConversions":
                assert (dimension, value) == ("service", "checkout-conversions")  # Powertools' dimension
                assert name in emitted, f"{widget['properties']['title']}: {name} is never emitted"
            else:
                assert namespace == "AWS/Lambda" and dimension == "FunctionName"
                assert (name, value.strip("<>")) in LAMBDA_METRICS


def test_the_operator_sees_each_answer_state_lag_coverage_and_backlog(dashboard):
    by_title = {widget["properties"]["title"]: widget for widget in dashboard["widgets"]}

    def names(title):
        return [row[1] for row in metric_rows(by_title[title])]

    assert names("Webhook answers by kind") == [
        "Provisioned", "Duplicates", "Ignored", "SignatureFailures", "RejectedRequests", "Url5xxCount",
    ]  # fmt: skip
    for label in LABELS:
        assert names(f"{label} deliveries by state") == [
            f"{label}Sent", f"{label}Failed", f"{label}PermanentFailures", f"{label}Skipped",
            f"{label}Paused", "DeliveriesExpired",
        ]  # fmt: skip
        coverage = names(f"{label} match-key coverage (% of sent events carrying each key)")
        keys = USER_KEYS if label == "TikTok" else USER_DATA_KEYS
        assert coverage == [f"{label}Sent"] + [f"{label}MatchKey{k.title().replace('_', '')}" for k in keys]
    lag = metric_rows(by_title["Delivery lag p50 / p99 (s): payment to the platform's acceptance"])
    assert [(row[1], row[4]["stat"]) for row in lag] == [
        ("TikTokDeliveryLag", "p50"), ("TikTokDeliveryLag", "p99"),
        ("MetaDeliveryLag", "p50"), ("MetaDeliveryLag", "p99"),
    ]  # fmt: skip
    assert names("Redrive backlog (due deliveries found per run)") == [
        "TikTokRedriveBacklog",
        "MetaRedriveBacklog",
    ]
    assert names("Sender iterator age (ms behind the Sessions stream)") == ["IteratorAge"]


def test_the_stack_outputs_the_dashboards_url(template):
    url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url == (
        "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
        "#dashboards:name=${Dashboard}"
    )
