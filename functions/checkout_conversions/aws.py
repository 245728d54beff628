"""The AWS client configuration, and the DynamoDB client each Lambda container creates once.

Endpoints come the standard way: boto3 honours AWS_ENDPOINT_URL_DYNAMODB (local stand-ins).
"""

from typing import Any

import boto3
from botocore.config import Config

_CONNECT_SECONDS = 0.5
_READ_SECONDS = 1.5
_ATTEMPTS = 3  # in all: botocore's `max_attempts` would count retries only, one more
_BACKOFF_SECONDS = 1 + 2  # standard mode waits at most 1 s, then 2 s
# DynamoDB, SSM and Secrets Manager answer in milliseconds; one call with its retries ends within
# this, which the functions budget for against the Lambda's remaining time.
WORST_CASE_CALL_SECONDS = _ATTEMPTS * (_CONNECT_SECONDS + _READ_SECONDS) + _BACKOFF_SECONDS
AWS_CLIENT_CONFIG = Config(
    connect_timeout=_CONNECT_SECONDS,
    read_timeout=_READ_SECONDS,
    retries={"mode": "standard", "total_max_attempts": _ATTEMPTS},
    # The sender writes a batch's claims and records 8 at a time in each destination's thread.
    max_pool_connections=20,
)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=AWS_CLIENT_CONFIG)
