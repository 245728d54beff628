"""One POST to an ad platform's API with bounded time, and the HTTP client the sender and the
redrive share. Each platform says what goes in the request and what the answer means; nothing
here raises: every problem is a retryable Answer."""

import time
from collections.abc import Callable

import httpx

from checkout_conversions.destinations.base import Answer

MAX_RESPONSE_BYTES = 64 * 1024

Classify = Callable[[int, bytes], Answer]


def new_client() -> httpx.Client:
    """One per Lambda container, reused by every invocation (keeps the TLS connections warm)."""
    return httpx.Client(
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        headers={"User-Agent": "checkout-conversions/1.0"},
    )


def post(
    client: httpx.Client,
    url: str,
    content: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    classify: Classify,
) -> Answer:
    """POST and classify the answer. Connecting, sending, waiting for the answer and reading it
    are each bounded by `timeout_seconds`, so one call ends within about four times that."""
    try:
        with client.stream(
            "POST", url, content=content, headers=headers, timeout=httpx.Timeout(timeout_seconds)
        ) as response:
            # httpx's read timeout applies to each read: an answer trickled byte by byte would
            # never trip it, so the whole body gets one deadline of its own.
            deadline = time.monotonic() + timeout_seconds
            received = bytearray()
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    break
                if time.monotonic() > deadline:
                    return Answer.failure(f"answer not read within {timeout_seconds:g}s")
            return classify(response.status_code, bytes(received))
    except httpx.TimeoutException as error:
        return Answer.failure(f"timed out ({type(error).__name__}, {timeout_seconds:g}s)")
    except httpx.HTTPError as error:
        return Answer.failure(f"connection error: {type(error).__name__}")
    except Exception as error:  # noqa: BLE001 - a platform's problem is recorded, never raised
        return Answer.failure(f"unexpected error: {type(error).__name__}")
