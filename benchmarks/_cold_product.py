"""Cold start, product side: run as a script in a fresh interpreter by benchmarks/cold_start.py.

Reads its job (the signed Function URL event) from stdin, imports the handler as Lambda's runtime
does, handles the one delivery, and reports monotonic timestamps (CLOCK_MONOTONIC is shared by
every process, so the parent can place them against its spawn time).
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402


class Context:
    """What Lambda hands the handler; enough for Powertools and the time budget."""

    def __init__(self, request_id: str, timeout_seconds: float):
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = "StripeWebhookFunction"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:StripeWebhookFunction"
        self.aws_request_id = request_id
        self.log_group_name = "/aws/lambda/StripeWebhookFunction"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    from stripe_webhook.app import lambda_handler

    imported = time.perf_counter()
    answer = lambda_handler(job["event"], Context(job["request_id"], 10.0))
    handled = time.perf_counter()
    report = {"started": STARTED, "imported": imported, "handled": handled, "answer": answer}
    sys.stdout.write("\nBENCH_RESULT " + json.dumps(report) + "\n")
    sys.stdout.flush()


main()
