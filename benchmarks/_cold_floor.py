"""Cold start, floor side: run as a script in a fresh interpreter by benchmarks/cold_start.py.

The least any implementation of this webhook must do in a fresh process: import the same
dependencies (stripe, boto3, httpx, Powertools' Logger/Metrics/Tracer), create one DynamoDB client
and one httpx client (the product's settings), verify one Stripe signature, make one conditional
PutItem and one POST to the TikTok stand-in. With "powertools_objects" in the job it also
constructs one Logger, Metrics and Tracer, as the product's observability module does.
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    import boto3
    import httpx
    import stripe
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from botocore.config import Config

    if job.get("powertools_objects"):
        Logger(service="checkout-conversions")
        Metrics(service="checkout-conversions", namespace="CheckoutConversionsBench")
        Tracer(service="checkout-conversions")
    dynamodb = boto3.client(
        "dynamodb",
        config=Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "max_attempts": 3}),
    )
    http = httpx.Client(
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        headers={"User-Agent": "checkout-conversions/1.0"},
    )
    imported = time.perf_counter()

    event = job["event"]
    payload = event["body"].encode("utf-8")
    stripe.WebhookSignature.verify_header(
        payload, event["headers"]["stripe-signature"], job["secret"], tolerance=300
    )
    stripe_event = json.loads(payload)
    session_id = stripe_event["data"]["object"]["id"]
    dynamodb.put_item(
        TableName=job["table"],
        Item={
            "session_id": {"S": f"floor-{session_id}"},
            "stripe_event_id": {"S": stripe_event["id"]},
            "event_time": {"N": str(stripe_event["created"])},
            "tiktok_event": {"S": job["tiktok_body"]},
        },
        ConditionExpression="attribute_not_exists(session_id)",
    )
    answer = http.post(
        job["tiktok_url"],
        content=job["tiktok_body"].encode(),
        headers={"Access-Token": job["token"], "Content-Type": "application/json"},
        timeout=3.0,
    )
    handled = time.perf_counter()
    report = {
        "started": STARTED,
        "imported": imported,
        "handled": handled,
        "answer": {"statusCode": answer.status_code, "body": answer.text},
    }
    sys.stdout.write("\nBENCH_RESULT " + json.dumps(report) + "\n")
    sys.stdout.flush()


main()
