"""Cold start, floor side: run as a script in a fresh interpreter by benchmarks/cold_start.py.

The least any implementation of this webhook must do in a fresh process: import stripe, httpx and
boto3, create one DynamoDB client (the product's settings), verify one Stripe signature and make
one conditional PutItem of the session item. No Powertools, no TikTok POST: the webhook makes none.
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    import boto3
    import httpx  # noqa: F401 - part of the floor's imports (the sender's HTTP client)
    import stripe
    from botocore.config import Config

    dynamodb = boto3.client(
        "dynamodb",
        config=Config(connect_timeout=0.5, read_timeout=2, retries={"mode": "standard", "max_attempts": 3}),
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
            "purchase": {"S": job["purchase"]},
        },
        ConditionExpression="attribute_not_exists(session_id)",
    )
    handled = time.perf_counter()
    report = {
        "started": STARTED,
        "imported": imported,
        "handled": handled,
        "answer": {"statusCode": 200, "body": json.dumps({"status": "floor"})},
    }
    sys.stdout.write("\nBENCH_RESULT " + json.dumps(report) + "\n")
    sys.stdout.flush()


main()
