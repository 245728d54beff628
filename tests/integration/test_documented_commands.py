"""Every command in the README and in docs/ is exercised here, so that none goes stale.

A command is a line of a ```sh block, or an inline code span that starts with a program the docs
use (`make ...`, `aws ...`, `sam ...`). Those that need only this machine run as written, from the
repository: `make ...`; the AWS CLI's against moto on loopback (SSM, Secrets Manager,
CloudFormation; DynamoDB is the suite's own server); `.venv/bin/python -m devtools...`. A
placeholder session id (`cs_live_...`) is replaced by a real one; other placeholders (`<name>`,
`...`) are left as written, and such a command must then get past the CLI's own parsing.

`sam ...` and `stripe ...` need Docker, an AWS account or a Stripe account, so they cannot run
here. Each argument they take is checked against what it names instead: the template's parameters
and functions, samconfig.toml's stack, the files `make event` writes, and the pinned Stripe
library's own model of the webhook endpoint API.

The first test fails on a command no rule knows: a new kind of command in the docs needs its
check here.
"""

import contextlib
import functools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import httpx
import pytest

from checkout_conversions.stripe_side import events as stripe_events
from devtools.template_tables import load_template
from tests.factories import checkout_session, stripe_event
from tests.integration.conftest import read_secrets_from

pytestmark = pytest.mark.slow  # the README's and the docs' commands, many in subprocesses

pytest_plugins = ("tests.integration.redrive_fixtures",)

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
PROGRAMS = ("make", "aws", "sam", "stripe", "git", ".venv/bin/python", "export", "cp")
PLACEHOLDER_SESSION = re.compile(r"\bcs_(?:live_|test_)?\.\.\.")
STACK = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]["global"]["parameters"]["stack_name"]
# The AWS CLI's exit code when it rejects a command's syntax (before any request is made).
AWS_CLI_USAGE_ERROR = 252


@dataclass(frozen=True)
class Command:
    document: str
    text: str
    runnable: bool  # a line of a ```sh block: meant to be pasted as it is

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def words(self) -> list[str]:
        """The command without leading VAR=value assignments."""
        words = self.argv
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        return words

    @property
    def kind(self) -> str:
        words = self.words
        if words[0] == "make":
            target = next((word for word in words[1:] if "=" not in word), "help")
            return f"make {target}"
        if words[0] in ("aws", "sam", "stripe", "git"):
            return " ".join(words[:2]) if len(words) > 1 else words[0]
        if words[0] == ".venv/bin/python":
            return " ".join(words[:3])
        return words[0]

    def __str__(self) -> str:
        return f"{self.document}: {self.text}"


@functools.cache
def documented_commands() -> tuple[Command, ...]:
    commands = []
    for document in DOCUMENTS:
        text = document.read_text()
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                if shlex.split(line, comments=True):
                    commands.append(Command(document.name, line.strip(), runnable=True))
        prose = re.sub(r"```.*?```", "", text, flags=re.S).replace("\n", " ")
        for span in re.findall(r"`([^`]+)`", prose):
            for part in span.split("&&"):
                part = re.sub(r"\s+", " ", part).strip()
                if part.split(" ", 1)[0] in PROGRAMS and " " in part:
                    commands.append(Command(document.name, part, runnable=False))
    return tuple(commands)


def commands_of(*kinds: str) -> list[Command]:
    found = [command for command in documented_commands() if command.kind in kinds]
    assert found, f"the docs show no {' or '.join(kinds)} command any more: update this test"
    return found


# Each kind of command, and the test below that exercises it.
EXERCISED_BY = {
    "make run": "test_make_run_serves_the_samples_and_then_every_request",
    "make demo": "test_make_demo_checks_every_sample",
    "make test": "test_make_test_is_what_ci_runs",
    "make unit": "test_make_test_is_what_ci_runs",
    "make integration": "test_make_test_is_what_ci_runs",
    "make quick": "test_make_test_is_what_ci_runs",
    "make lint": "test_make_test_is_what_ci_runs",
    "make test-dynamodb-local": "test_make_test_is_what_ci_runs",
    "make bench": "test_make_bench_is_a_target_that_runs_the_benchmarks",
    "make event": "test_make_event_writes_what_sam_local_invoke_reads",
    "make deliveries": "test_make_deliveries_lists_and_requeues_as_the_docs_say",
    "make replay": "test_make_replay_reports_what_was_missed_as_the_docs_say",
    ".venv/bin/python -m devtools.deliveries": "test_make_deliveries_lists_and_requeues_as_the_docs_say",
    ".venv/bin/python -m devtools.local_server": "test_the_local_server_help",
    "aws ssm": "test_the_secret_commands_store_what_the_functions_read",
    "aws secretsmanager": "test_the_secret_commands_store_what_the_functions_read",
    "aws cloudformation": "test_the_stack_output_command_prints_the_webhook_url",
    "aws dynamodb": "test_every_aws_command_is_valid_aws_cli_syntax",
    "sam build": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "sam deploy": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "sam delete": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "sam logs": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "sam local": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "sam validate": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "stripe webhook_endpoints": "test_the_stripe_endpoint_command_matches_stripes_api_and_the_function",
    "stripe listen": "test_stripe_listen_and_trigger_point_at_make_run",
    "stripe trigger": "test_stripe_listen_and_trigger_point_at_make_run",
    "stripe events": "test_stripe_listen_and_trigger_point_at_make_run",
    "git pull": "test_sam_commands_name_what_the_template_and_samconfig_define",
    "cp": "test_a_deploy_after_going_live_keeps_the_stack_live",
    "aws configure": "test_the_region_is_set_once_for_every_aws_command",
    "export": "test_stripe_listen_and_trigger_point_at_make_run",
}


def test_every_documented_command_is_exercised_by_a_test_here():
    commands = documented_commands()
    assert len(commands) > 30
    unknown = [str(command) for command in commands if command.kind not in EXERCISED_BY]
    assert unknown == []
    tests = {name for name in globals() if name.startswith("test_")}
    assert set(EXERCISED_BY.values()) <= tests
    # Every shell block is `sh`, so that none escapes the collection above.
    for document in DOCUMENTS:
        assert not re.findall(r"```(?:bash|shell|console|zsh)\n", document.read_text()), document.name


# ---------------------------------------------------------------------------------- running them


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def shell_env(tmp_path, aws_endpoint, dynamodb_endpoint):
    """What a user's shell would hold for these commands: this test run's virtual environment (as
    `make` would use), AWS pointed at loopback with throwaway credentials and no profile of the
    developer's, no settings of this test run."""
    inherited = ("TIKTOK_", "META_", "STRIPE_", "POWERTOOLS_", "AWS_", "SESSIONS_", "CUSTOMERS_", "RENEWAL_")
    environ = {name: value for name, value in os.environ.items() if not name.startswith(inherited)}
    venv = Path(sys.prefix)
    environ.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
            "VENV": str(venv),
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_PAGER": "",
        }
    )
    return environ


def as_run(command: Command, session_id: str | None = None) -> list[str]:
    """The command's words as the docs show them; a placeholder session id becomes a real one and
    `.venv/bin/python` this test run's interpreter (the same virtual environment on CI's second
    Python)."""
    argv = command.argv
    if session_id:
        argv = [PLACEHOLDER_SESSION.sub(session_id, word) for word in argv]
    if argv[0] == ".venv/bin/python":
        argv[0] = sys.executable
    assignments = [word for word in argv if re.match(r"^[A-Z_]+=", word) and argv[0] != "make"]
    assert not assignments, f"{command}: a leading assignment is not run by this test"
    return argv


def run(command: Command, env: dict[str, str], session_id: str | None = None, timeout: float = 120):
    return subprocess.run(
        as_run(command, session_id),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def no_developer_dotenv() -> None:
    if (ROOT / ".env").exists():
        pytest.skip("a .env in the repository would give `make run` real platform tokens: not run here")


def test_make_run_serves_the_samples_and_then_every_request(shell_env):
    no_developer_dotenv()
    [command] = {
        tuple(command.argv): command for command in commands_of("make run") if command.runnable
    }.values()
    port = free_port()
    server = subprocess.Popen(
        as_run(command),
        cwd=ROOT,
        env={**shell_env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches make and the server it started, as in a terminal
    )
    try:
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            seen.append(line)
            if line.startswith("Serving ") or not line:
                break
        output = "".join(seen)
        assert f"Stripe webhook (StripeWebhookFunction) on http://127.0.0.1:{port}/" in output, output
        assert "MISMATCH" not in output and f"Serving http://127.0.0.1:{port}/ until Ctrl-C" in output
        answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert answer.status_code == 405
    finally:
        os.killpg(server.pid, signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
    # make itself dies of the Ctrl-C, as in a terminal; the server stops cleanly.
    assert server.returncode in (0, -signal.SIGINT, 128 + signal.SIGINT)
    assert "GET / -> 405" in rest and "Stopped." in rest  # the request, printed after the banner


def test_make_demo_checks_every_sample(shell_env):
    no_developer_dotenv()
    for command in commands_of("make demo"):
        done = run(command, shell_env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Demo OK: all" in done.stdout


def test_make_test_is_what_ci_runs():
    """`make test` is this suite: CI runs it as the README says, and it runs the parts the docs
    name one by one (`make lint`, `make unit`, `make integration`, `make test-dynamodb-local`)."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "make test-dynamodb-local" in ci
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    # Every test, the slow ones too: `make demo` is one of them (test_make_demo_checks_every_sample).
    assert (
        test_recipe.startswith("lint")
        and " -m pytest -n " in test_recipe
        and " -m " not in test_recipe.split("pytest", 1)[1]
    )
    quick_recipe = makefile.split("\nquick: ", 1)[1].split("\n\n", 1)[0]
    assert '-m pytest -m "not slow"' in quick_recipe
    for command in commands_of(
        "make test", "make unit", "make integration", "make lint", "make test-dynamodb-local", "make quick"
    ):
        assert re.search(rf"^{command.words[1]}:", makefile, re.M), command


def test_make_bench_is_a_target_that_runs_the_benchmarks():
    """Not run here (minutes of load on loopback): the target and the module it runs exist."""
    for command in commands_of("make bench"):
        assert re.search(
            r"^bench: .*\n\t\$\(BIN\)/python -m benchmarks\.run_all$", (ROOT / "Makefile").read_text(), re.M
        )
        assert (ROOT / "benchmarks" / "run_all.py").exists(), command


def test_the_local_server_help(shell_env):
    for command in commands_of(".venv/bin/python -m devtools.local_server"):
        done = run(command, shell_env)
        assert done.returncode == 0 and "--manifest" in done.stdout and "--env-file" in done.stdout, command


def test_make_event_writes_what_sam_local_invoke_reads(shell_env):
    invoked = [
        command
        for command in commands_of("sam local")
        if command.words[2:3] == ["invoke"] and command.runnable
    ]
    read = {
        word
        for command in invoked
        for flag, word in zip(command.words, command.words[1:], strict=False)
        if flag in ("-e", "--env-vars")
    }
    assert read, "the docs show sam local invoke with the files make event writes"
    for path in read:
        (ROOT / path).unlink(missing_ok=True)
    for command in commands_of("make event"):
        done = run(command, shell_env)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    for path in read:
        assert (ROOT / path).exists(), f"no command of the docs' `make event` wrote {path}"
    invoke_event = json.loads((ROOT / "events/generated/checkout_session_completed.invoke.json").read_text())
    assert invoke_event["requestContext"]["http"]["method"] == "POST"
    stream_event = json.loads((ROOT / "events/generated/stream.invoke.json").read_text())
    assert stream_event["Records"][0]["eventName"] == "INSERT"


# ------------------------------------------------------------------------------------ the AWS CLI


def test_every_aws_command_is_valid_aws_cli_syntax(shell_env):
    """Placeholders included: the AWS CLI accepts each command's service, operation and options
    (moto may refuse what it is asked: a table called `<name>` does not exist)."""
    for command in commands_of("aws ssm", "aws secretsmanager", "aws cloudformation", "aws dynamodb"):
        done = run(command, shell_env)
        assert done.returncode != AWS_CLI_USAGE_ERROR, f"{command}\n{done.stderr}"
        assert "usage:" not in done.stderr and "Unknown options" not in done.stderr, (
            f"{command}\n{done.stderr}"
        )


@pytest.fixture
def clean_secret_names(aws_endpoint):
    """The docs' names, free in moto for this test: they are not unique to a test."""
    ssm = boto3.client("ssm", endpoint_url=aws_endpoint)
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint)
    for name in (
        "stripe-webhook-secret",
        "tiktok-access-token",
        "meta-access-token",
        "tiktok-test-event-code",
        "meta-test-event-code",
    ):
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            ssm.delete_parameter(Name=f"/checkout-conversions/{name}")
        with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
            secrets.delete_secret(SecretId=f"checkout-conversions/{name}", ForceDeleteWithoutRecovery=True)
    return ssm


def test_the_secret_commands_store_what_the_functions_read(
    shell_env, clean_secret_names, aws_endpoint, monkeypatch
):
    """The checklist's and the runbook's secret commands, in the docs' order: what they leave in
    Parameter Store and Secrets Manager is what the functions then read."""
    from aws_lambda_powertools.utilities import parameters

    from checkout_conversions.outbox.model import ReportFacts
    from checkout_conversions.outbox.policy import skip_reason
    from checkout_conversions.purchase import Consent, PurchaseKind
    from checkout_conversions.secrets import read_optional, read_switch
    from checkout_conversions.settings import load_settings
    from checkout_conversions.webhook import _signing_secrets

    def access_token(settings, name):
        return read_switch(settings.destination(name).access_token, settings.secrets, os.environ)

    runnable = [
        command for command in commands_of("aws ssm", "aws secretsmanager") if "..." not in command.text
    ]
    for command in runnable:
        done = run(command, shell_env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"

    names = {
        "SECRETS_SOURCE": "ssm",
        "STRIPE_WEBHOOK_SECRET_NAME": "/checkout-conversions/stripe-webhook-secret",
        "TIKTOK_ACCESS_TOKEN_NAME": "/checkout-conversions/tiktok-access-token",
        "META_ACCESS_TOKEN_NAME": "/checkout-conversions/meta-access-token",
        "TIKTOK_TEST_EVENT_CODE_NAME": "/checkout-conversions/tiktok-test-event-code",
        "META_TEST_EVENT_CODE_NAME": "/checkout-conversions/meta-test-event-code",
        "SECRETS_CACHE_SECONDS": "0",
    }
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    read_secrets_from(aws_endpoint, monkeypatch)
    settings = load_settings()
    # The endpoint's secret overwrote the placeholder; the TikTok token is as stored; Meta's was
    # then switched off the documented way.
    assert _signing_secrets(settings) == ["whsec_from_the_endpoint"]
    assert access_token(settings, "tiktok") == "your-tiktok-events-api-token"
    # Stored in step 2, cleared in step 5: live.
    for name in ("tiktok", "meta"):
        code = settings.destination(name).test_event_code
        assert read_optional(code, settings.secrets, os.environ) == ""
    assert (
        clean_secret_names.get_parameter(Name=names["META_ACCESS_TOKEN_NAME"], WithDecryption=True)[
            "Parameter"
        ]["Value"]
        == "disabled"
    )
    meta_token = access_token(settings, "meta")
    meta = replace(settings.destination("meta"), pixel_id="1234567890")
    now = int(time.time())
    facts = ReportFacts(PurchaseKind.CHECKOUT, livemode=True, event_time=now, consent=Consent.UNKNOWN)
    off = skip_reason(meta, facts, settings.require_ad_consent, now, meta_token)
    assert meta_token == "" and off and "switched off" in off.describe(meta)

    # Secrets Manager, as docs/deploy.md stores and then switches off TikTok's token.
    monkeypatch.setenv("SECRETS_SOURCE", "secretsmanager")
    monkeypatch.setenv("TIKTOK_ACCESS_TOKEN_NAME", "checkout-conversions/tiktok-access-token")
    parameters.clear_caches()
    assert access_token(load_settings(), "tiktok") == ""  # switched off
    parameters.clear_caches()


@pytest.fixture
def deployed_stack(aws_endpoint, tables):
    """A stack of samconfig.toml's name in moto's CloudFormation, with the template's outputs for
    this test's tables (the rest of the stack cannot be deployed here)."""
    cloudformation = boto3.client("cloudformation", endpoint_url=aws_endpoint)
    outputs = {
        "WebhookUrl": "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/",
        "SessionsTableName": tables["SESSIONS_TABLE_NAME"],
        "CustomersTableName": tables["CUSTOMERS_TABLE_NAME"],
    }
    assert set(outputs) <= set(load_template()["Outputs"])
    template = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{STACK}/marker", "Type": "String", "Value": "deployed"},
            }
        },
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    with contextlib.suppress(cloudformation.exceptions.ClientError):
        cloudformation.delete_stack(StackName=STACK)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    yield outputs
    cloudformation.delete_stack(StackName=STACK)


def test_the_stack_output_command_prints_the_webhook_url(shell_env, deployed_stack):
    for command in commands_of("aws cloudformation"):
        done = run(command, shell_env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert done.stdout.strip() == deployed_stack["WebhookUrl"]


@pytest.fixture
def failed_everywhere(both_env, deliver, stream, tiktok_server, meta_server, db):
    """One purchase that both platforms refused for good."""
    tiktok_server.behave("code:40002")  # payload errors (a refused token would pause instead)
    meta_server.behave("error:100")
    session = checkout_session()
    assert deliver(stripe_event(session=session)).status == 200
    stream.drain()
    assert db.delivery(session["id"], "tiktok")["delivery_status"] == "failed"
    assert db.delivery(session["id"], "meta")["delivery_status"] == "failed"
    return session["id"]


def test_make_deliveries_lists_and_requeues_as_the_docs_say(shell_env, deployed_stack, failed_everywhere, db):
    session_id = failed_everywhere
    with_table = {**shell_env, "SESSIONS_TABLE_NAME": deployed_stack["SessionsTableName"]}
    commands = commands_of("make deliveries", ".venv/bin/python -m devtools.deliveries")
    listings = [command for command in commands if "REQUEUE=" not in command.text]
    requeues = [command for command in commands if "REQUEUE=" in command.text]
    assert any("STACK=" in command.text for command in listings) and any(
        "DESTINATION=meta" in c.text for c in requeues
    )

    for command in listings:
        # Through the stack's outputs when the command names the stack, else SESSIONS_TABLE_NAME.
        environ = shell_env if STACK in command.text else with_table
        done = run(command, environ)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert session_id in done.stdout and "failed" in done.stdout, command
        assert "TikTok" in done.stdout

    for command in requeues:
        environ = shell_env if STACK in command.text else with_table
        destination = "meta" if "DESTINATION=meta" in command.text else "tiktok"
        done = run(command, environ, session_id=session_id)
        # Failed for good, or already requeued by an earlier command of the docs: due now.
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        after = db.delivery(session_id, destination)
        assert after["delivery_status"] == "pending" and after["redrive_queue"] == destination
        assert after["next_attempt_at"] <= time.time() + 1
    for destination in ("tiktok", "meta"):
        assert db.delivery(session_id, destination)["delivery_status"] == "pending"


@pytest.fixture
def stack_with_functions(aws_endpoint, both_env, tables):
    """A stack of samconfig.toml's name in moto with the two delivery functions configured as this
    test's (moto keeps their configuration; nothing runs there), and the template's outputs."""
    variables = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("TIKTOK_", "META_", "SESSIONS_", "CUSTOMERS_", "REDRIVE_", "DELIVERY_"))
    }
    role = {"Fn::GetAtt": ["DeliveryRole", "Arn"]}
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.13",
            "Handler": "app.lambda_handler",
            "Role": role,
            "Code": {"ZipFile": "def lambda_handler(event, context): pass"},
            "Environment": {"Variables": variables},
        },
    }
    assert {"DeliverySenderFunction", "DeliveryRedriveFunction"} <= set(load_template()["Resources"])
    template = {
        "Resources": {
            "DeliveryRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]}},
            },
            "DeliverySenderFunction": function,
            "DeliveryRedriveFunction": function,
        },
        "Outputs": {"SessionsTableName": {"Value": tables["SESSIONS_TABLE_NAME"]}},
    }
    cloudformation = boto3.client("cloudformation", endpoint_url=aws_endpoint)
    with contextlib.suppress(cloudformation.exceptions.ClientError):
        cloudformation.delete_stack(StackName=STACK)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    yield variables
    cloudformation.delete_stack(StackName=STACK)


def test_make_replay_reports_what_was_missed_as_the_docs_say(
    shell_env, stack_with_functions, stripe_server, db, stream, tiktok_server, meta_server
):
    """A sale Stripe kept and the stack never saw: the dry run shows it and writes nothing; the
    documented APPLY=1 provisions it once, and Meta's replay afterwards finds nothing to do."""
    commands = [command for command in commands_of("make replay") if "SINCE=" in command.text]  # not the name
    dry_runs = [command for command in commands if "APPLY=1" not in command.text]
    applying = [command for command in commands if "APPLY=1" in command.text]
    assert dry_runs and applying and all(STACK in command.text for command in commands)
    session = checkout_session()
    stripe_server.reset()
    stripe_server.add_events([stripe_event(session=session, created=int(time.time()) - 3600)])
    environ = {**shell_env, "STRIPE_API_KEY": "rk_test_replay", "STRIPE_API_BASE": stripe_server.url}

    for command in dry_runs:
        done = run(command, environ)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert session["id"] in done.stdout and "provision" in done.stdout and "Dry run" in done.stdout
        assert db.delivery(session["id"], "tiktok") is None, "a dry run wrote"
    for command in applying:
        done = run(command, environ)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert session["id"] in done.stdout
    stream.drain()
    assert [event["event_id"] for event in tiktok_server.events()] == [session["id"]]
    assert [event["event_id"] for event in meta_server.events()] == [session["id"]]
    last = run(applying[-1], environ)
    assert "already sent" in last.stdout and "provisioned" not in last.stdout.split("Totals")[0]


# ------------------------------------------------------------ commands that cannot run here: checked


def parameter_overrides(words: list[str]) -> dict[str, str]:
    if "--parameter-overrides" not in words:
        return {}
    given = words[words.index("--parameter-overrides") + 1 :]
    return dict(word.split("=", 1) for word in given if "=" in word and not word.startswith("-"))


def test_sam_commands_name_what_the_template_and_samconfig_define():
    template = load_template()
    functions = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    subcommands = {"build", "deploy", "delete", "logs", "local", "validate"}
    checked = 0
    for command in commands_of(
        "sam build", "sam deploy", "sam delete", "sam logs", "sam local", "sam validate", "git pull"
    ):
        words = command.words
        if words[0] == "git":
            assert words == ["git", "pull"], command
            continue
        assert words[1] in subcommands, command
        if "--stack-name" in words:
            stack = words[words.index("--stack-name") + 1]
            assert stack == STACK or stack.startswith(f"{STACK}-"), command  # or a second one, for test mode
        assert set(parameter_overrides(words)) <= set(template["Parameters"]), command
        if words[1] == "deploy" and words != ["sam", "deploy", "--guided"]:  # deploy.md's heading
            # The merchant's answers, in a file git ignores (never the tracked defaults or example).
            assert "--config-file" in words, command
            config = words[words.index("--config-file") + 1]
            assert re.fullmatch(r"samconfig\.[a-z-]+\.toml", config) and config != "samconfig.example.toml"
        for flag in ("-n", "--name"):
            if flag in words:
                assert words[words.index(flag) + 1] in functions, command
        if words[1:3] == ["local", "invoke"] and len(words) > 3:
            assert words[3] in functions, command
        if words[1] == "local":
            assert len(words) > 2 and words[2] in ("invoke", "start-api"), command
        checked += 1
    assert checked >= 8


def test_the_guided_deploy_table_names_every_template_parameter():
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    prompts = deploy.split("## What `sam deploy --guided` asks", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`Parameter ([A-Za-z]+)`|, `([A-Za-z]+)`", prompts))
    named = {name for pair in named for name in pair if name}
    assert sorted(set(load_template()["Parameters"]) - named) == []


def test_the_stripe_endpoint_command_matches_stripes_api_and_the_function():
    """Every `-d` of `stripe webhook_endpoints create` is a parameter of Stripe's create-endpoint
    API as the pinned library models it; the events are the ones the function handles, the API
    version the one its sample events (and tests) are written in."""
    import typing

    from stripe.params import WebhookEndpointCreateParams

    hints = WebhookEndpointCreateParams.__annotations__  # NotRequired[Literal[...]] and the like
    known_events = set(typing.get_args(typing.get_args(hints["enabled_events"])[0]))
    known_versions = set(typing.get_args(typing.get_args(hints["api_version"])[0]))
    assert "checkout.session.completed" in known_events and len(known_versions) > 100
    sample_version = json.loads((ROOT / "events" / "checkout_session_completed.json").read_text())[
        "api_version"
    ]
    handled = {
        stripe_events.COMPLETED,
        stripe_events.ASYNC_SUCCEEDED,
        stripe_events.ASYNC_FAILED,
        stripe_events.INVOICE_PAID,
        stripe_events.SUBSCRIPTION_UPDATED,
        stripe_events.SUBSCRIPTION_DELETED,
    }
    for command in commands_of("stripe webhook_endpoints"):
        words = command.words
        assert words[2] == "create", command
        data = [words[index + 1] for index, word in enumerate(words) if word == "-d"]
        pairs = [item.split("=", 1) for item in data]
        assert {key.removesuffix("[]") for key, _ in pairs} <= set(hints), command
        events = {value for key, value in pairs if key == "enabled_events[]"}
        assert events == handled and events <= known_events, command
        [version] = [value for key, value in pairs if key == "api_version"]
        assert version == sample_version and version in known_versions
        [url] = [value for key, value in pairs if key == "url"]
        assert re.fullmatch(r"https://[a-z0-9-]+\.lambda-url\.[a-z0-9-]+\.on\.aws/", url)
        assert set(words) - {"-d", *data} <= {"stripe", "webhook_endpoints", "create", "--live"}


def test_stripe_listen_and_trigger_point_at_make_run():
    makefile = (ROOT / "Makefile").read_text()
    port = re.search(r"^PORT \?= (\d+)$", makefile, re.M).group(1)
    for command in commands_of("stripe listen", "stripe trigger", "stripe events", "export"):
        words = command.words
        if words[0] == "export":
            name = words[1].split("=", 1)[0]
            assert name == "STRIPE_WEBHOOK_SECRET", command
        elif words[1] == "listen":
            assert words[2:] == ["--forward-to", f"http://127.0.0.1:{port}/"], command
        elif words[1] == "trigger" and len(words) > 2:
            # A Stripe fixture the webhook provisions from, with the metadata the browser kit adds.
            metadata = trigger_metadata(command)
            decided = stripe_events.classify(
                stripe_event(words[2], session=checkout_session(metadata=metadata))
            )
            assert isinstance(decided, stripe_events.CheckoutPaid), command
            assert_provisioned_with_the_match_keys(decided, metadata)
        elif words[1] == "events":
            assert words[2] == "resend", command


# ---------------------------------------------------------- a test purchase without a shop


def documented_metadata_keys() -> set[str]:
    """The metadata keys docs/configuration.md lists (the browser kit's)."""
    reference = (ROOT / "docs" / "configuration.md").read_text()
    table = reference.split("## Checkout Session metadata", 1)[1].split("\n\n", 2)[2]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))


def trigger_metadata(command: Command) -> dict[str, str]:
    """The Checkout Session metadata a `stripe trigger ... --add checkout_session:metadata[key]=value`
    adds: each key one the docs list, on a parameter Stripe's create-session API takes (the pinned
    library's model of it)."""
    from stripe.params.checkout import SessionCreateParams

    words = command.words
    added = [words[index + 1] for index, word in enumerate(words) if word == "--add"]
    assert set(words) - {"--add", *added} <= {"stripe", "trigger", words[2]}, command
    metadata = {}
    for item in added:
        match = re.fullmatch(r"checkout_session:metadata\[([a-z_]+)\]=(.+)", item)
        assert match, f"{command}: {item}"
        metadata[match.group(1)] = match.group(2)
    assert "metadata" in SessionCreateParams.__annotations__
    assert set(metadata) <= documented_metadata_keys(), command
    return metadata


def assert_provisioned_with_the_match_keys(paid, metadata: dict[str, str]) -> None:
    """What the webhook would store for the sender: the purchase carries every added key."""
    from checkout_conversions.stripe_side.checkout import purchase

    stored = purchase(paid.session, paid.event).to_json()
    for key, value in metadata.items():
        if key != "ad_consent":  # a decision, not a match key: the policy reads it
            assert value in stored, (key, value, stored)


def test_the_readme_makes_a_test_purchase_with_the_kits_metadata():
    [trigger] = [command for command in commands_of("stripe trigger") if command.document == "README.md"]
    metadata = trigger_metadata(trigger)
    # A click id per platform, the buyer's IP and User-Agent (Meta needs it), consent.
    assert {"ttclid", "fbclid", "client_ip", "user_agent", "ad_consent"} <= set(metadata)
    assert metadata["ad_consent"] == "granted"


# ------------------------------------------------------------------- the region, set once


def test_the_region_is_set_once_for_every_aws_command(shell_env, tmp_path, monkeypatch):
    """The README's `aws configure set region ...` is where every command's region comes from:
    the AWS CLI's and boto3's (the SAM CLI's, `make deliveries`) shared configuration file."""
    [command] = [command for command in commands_of("aws configure") if command.document == "README.md"]
    words = command.words
    assert words[:4] == ["aws", "configure", "set", "region"], command
    region = words[4]
    environ = {
        name: value for name, value in shell_env.items() if name not in ("AWS_DEFAULT_REGION", "AWS_REGION")
    }
    done = run(command, environ)
    assert done.returncode == 0, done.stderr
    assert region in Path(environ["AWS_CONFIG_FILE"]).read_text()
    got = run(replace(command, text="aws configure get region"), environ)
    assert got.returncode == 0 and got.stdout.strip() == region
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", environ["AWS_CONFIG_FILE"])
    assert boto3.session.Session().region_name == region  # devtools/deliveries.py's clients
    deliveries = (ROOT / "devtools" / "deliveries.py").read_text()
    assert "region_name=" not in deliveries  # the standard chain, never a region of its own
    # No documented AWS command names another region of its own.
    for command in documented_commands():
        if command.kind.startswith(("aws ", "sam ", "make deliveries")):
            assert "--region" not in command.words, command


# ------------------------------------------------------ going live, and staying live


def saved_overrides(config: dict) -> dict[str, str]:
    """A samconfig file's deploy `parameter_overrides` (SAM's `Key="value" ...` string)."""
    text = config.get("default", {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    return dict(word.split("=", 1) for word in shlex.split(text))


def effective_parameters(template: dict, saved: dict[str, str], command: Command) -> dict[str, str]:
    """What CloudFormation deploys: the template's defaults, the answers saved in the config file,
    then the command line's --parameter-overrides."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    return {**defaults, **saved, **parameter_overrides(command.words)}


def sender_environment(template: dict, parameters: dict[str, str]) -> dict[str, str]:
    """DeliverySenderFunction's environment as deployed with these parameters (`!Ref` variables)."""
    variables = {
        **template["Globals"]["Function"]["Environment"]["Variables"],
        **template["Resources"]["DeliverySenderFunction"]["Properties"]["Environment"]["Variables"],
    }
    return {
        name: parameters[value["Ref"]]
        for name, value in variables.items()
        if isinstance(value, dict) and value.get("Ref") in parameters
    }


def test_a_deploy_after_going_live_keeps_the_stack_live(
    shell_env, clean_secret_names, aws_endpoint, monkeypatch
):
    """README steps 2 to 6 as a merchant runs them: the answers file started from the tracked
    example (and saved back by the guided deploy with the merchant's pixel ids), the test codes
    stored (the sender sends with them), cleared in the store to go live, then `git pull` and the
    upgrade's `sam deploy`: the functions read no test code, and nothing the deploy passes can
    bring one back."""
    import httpx as http_client
    from aws_lambda_powertools.utilities import parameters

    from checkout_conversions.outbox.sending import open_sending
    from checkout_conversions.purchase import Buyer, Purchase, PurchaseKind
    from checkout_conversions.settings import load_settings

    readme = [command for command in documented_commands() if command.document == "README.md"]
    [copy] = [command for command in readme if command.kind == "cp"]
    example, answers = copy.words[1:]
    ignored = run(replace(copy, text=f"git check-ignore -q {answers}"), dict(os.environ))
    assert ignored.returncode == 0, f"git must ignore {answers}: a pull would conflict with it"
    kept = run(replace(copy, text=f"git check-ignore -q {example}"), dict(os.environ))
    assert kept.returncode == 1 and (ROOT / example).exists(), f"{example} is the tracked example"
    deploys = [command for command in readme if command.kind == "sam deploy"]
    guided = [command for command in deploys if "--guided" in command.words and command.runnable]
    [upgrade] = [command for command in deploys if "--guided" not in command.words and command.runnable]
    for command in [*guided, upgrade]:
        words = command.words
        assert words[words.index("--config-file") + 1] == answers, command
    pull = readme.index(next(command for command in readme if command.kind == "git pull"))
    assert readme.index(upgrade) > pull

    template = load_template()
    defaults = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert saved_overrides(defaults) == {}, "samconfig.toml holds the project's defaults, no answers"
    # The guided deploy saves the example's answers with the merchant's (pixel ids, region).
    saved = {
        **saved_overrides(tomllib.loads((ROOT / example).read_text())),
        "TikTokPixelId": "CPIXEL01",
        "MetaPixelId": "1234567890",
    }
    assert set(saved) <= set(template["Parameters"])
    assert not {"TikTokTestEventCode", "MetaTestEventCode"} & set(saved)
    deployed = effective_parameters(template, saved, upgrade)
    assert deployed["SecretsSource"] == "ssm"
    environ = {**sender_environment(template, deployed), "AWS_ENDPOINT_URL_SSM": aws_endpoint}
    # With a store, the codes are read from their stored names: the parameters are not used.
    assert environ["TIKTOK_TEST_EVENT_CODE"] == environ["META_TEST_EVENT_CODE"] == ""
    read_secrets_from(aws_endpoint, monkeypatch)

    def codes_read_by_the_sender() -> dict[str, str]:
        read_secrets_from(aws_endpoint, monkeypatch)  # a container started now (or the cache expired)
        settings = load_settings(environ)
        with http_client.Client() as http:
            opened = {
                name: open_sending(settings.destination(name), settings, http, environ)
                for name in ("tiktok", "meta")
            }
        purchase = Purchase(
            event_id="cs_live_1",
            event_time=int(time.time()),
            order_id="cs_live_1",
            buyer=Buyer(email="jane.doe@example.com"),
            amount=100,
            currency="USD",
        )
        for sending in opened.values():
            prepared = sending.platform.prepare(purchase, None, PurchaseKind.CHECKOUT)
            body = json.loads(sending.platform.body([prepared]))
            assert body.get("test_event_code", "") == sending.test_event_code
        return {name: sending.test_event_code for name, sending in opened.items()}

    stored = [command for command in readme if command.kind == "aws ssm" and command.runnable]
    going_live = [
        command
        for command in stored
        if command.words[-2:] == ["--value", "disabled"] and "test-event-code" in command.text
    ]
    assert {command.words[command.words.index("--name") + 1] for command in going_live} == {
        environ["TIKTOK_TEST_EVENT_CODE_NAME"],
        environ["META_TEST_EVENT_CODE_NAME"],
    }
    for command in stored:
        if command in going_live:
            continue
        done = run(command, shell_env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    testing = codes_read_by_the_sender()
    assert testing == {"tiktok": "TEST12345", "meta": "TEST67890"}  # step 5: Test Events

    for command in going_live:
        done = run(command, shell_env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    assert codes_read_by_the_sender() == {"tiktok": "", "meta": ""}  # live

    # git pull and the upgrade's deploy: the same answers, the same store: still live.
    redeployed = effective_parameters(template, saved, upgrade)
    assert sender_environment(template, redeployed) == sender_environment(template, deployed)
    assert codes_read_by_the_sender() == {"tiktok": "", "meta": ""}
    parameters.clear_caches()
