"""The AWS clients (aws.py): bounded timeouts and retries that end inside the webhook's 10 s."""

from checkout_conversions.aws import dynamodb_client


def test_the_dynamodb_client_makes_three_attempts_in_all(monkeypatch):
    """Three attempts of 0.5 s + 1.5 s at most, with standard backoff, end inside the webhook's 10 s."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    client_config = dynamodb_client().meta.config

    assert client_config.retries == {"mode": "standard", "total_max_attempts": 3}
    worst_case = 3 * (client_config.connect_timeout + client_config.read_timeout) + 1 + 2
    assert worst_case < 10
