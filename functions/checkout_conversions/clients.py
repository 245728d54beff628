"""The AWS and HTTP clients, created once per Lambda container and reused by every invocation.

Endpoints come the standard way: boto3 honours AWS_ENDPOINT_URL_DYNAMODB (local stand-ins), and
the TikTok URL is a setting. Timeouts are short because Stripe, and the buyer behind Checkout's
redirect, wait for the answer.
"""

from typing import Any

import boto3
import httpx
from botocore.config import Config

# Three attempts of at most 0.5 s + 2 s, with standard-mode backoff, end well inside the
# webhook's 10 s timeout (DynamoDB itself answers in milliseconds).
DYNAMODB_CONFIG = Config(
    connect_timeout=0.5,
    read_timeout=2,
    retries={"mode": "standard", "max_attempts": 3},
)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=DYNAMODB_CONFIG)


def http_client() -> httpx.Client:
    return httpx.Client(
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        headers={"User-Agent": "checkout-conversions/1.0"},
    )
