"""The AWS client configuration, and the DynamoDB client each Lambda container creates once.

Endpoints come the standard way: boto3 honours AWS_ENDPOINT_URL_DYNAMODB (local stand-ins).
"""

from typing import Any

import boto3
from botocore.config import Config

# Three attempts in all (botocore's `max_attempts` would count retries only: one more) of at most
# 0.5 s + 1.5 s each, with standard-mode backoff (at most 1 s, then 2 s), end within about 9 s,
# inside the webhook's 10 s timeout. DynamoDB, SSM and Secrets Manager answer in milliseconds.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=0.5,
    read_timeout=1.5,
    retries={"mode": "standard", "total_max_attempts": 3},
)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=AWS_CLIENT_CONFIG)
