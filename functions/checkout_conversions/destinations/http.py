"""One POST to an ad platform's API with bounded time, and the HTTP client the sender and the
redrive share. Each platform says what goes in the request and what the answer means; nothing
here raises: every problem is a retryable Answer."""

from collections.abc import Callable

import httpx

from checkout_conversions.destinations import deadline
from checkout_conversions.destinations.base import Answer

MAX_RESPONSE_BYTES = 64 * 1024

Classify = Callable[[int, bytes], Answer]


def new_client() -> httpx.Client:
    """One per Lambda container, reused by every invocation (keeps the TLS connections warm) and
    shared by the sender's threads. Its transport bounds each request by the deadline `post` sets."""
    return httpx.Client(
        transport=deadline.transport(httpx.Limits(max_connections=4, max_keepalive_connections=2)),
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
    """POST and classify the answer. One deadline, `timeout_seconds` from the call, bounds the
    whole request: waiting for a pooled connection, connecting, sending, waiting for the answer's
    headers and reading its body (an answer trickled byte by byte included), so that one call ends
    within about `timeout_seconds` (the DNS lookup aside). The client must come from `new_client`."""
    try:
        with (
            deadline.bounded(timeout_seconds),
            client.stream(
                "POST", url, content=content, headers=headers, timeout=httpx.Timeout(timeout_seconds)
            ) as response,
        ):
            return classify(response.status_code, _read_capped(response))
    except httpx.TimeoutException as error:
        return Answer.failure(f"timed out ({type(error).__name__}, {timeout_seconds:g}s)")
    except httpx.HTTPError as error:
        return Answer.failure(f"connection error: {type(error).__name__}")
    except Exception as error:  # noqa: BLE001 - a platform's problem is recorded, never raised
        return Answer.failure(f"unexpected error: {type(error).__name__}")


def _read_capped(response: httpx.Response) -> bytes:
    """The answer's body, or its first MAX_RESPONSE_BYTES and a little more: no platform answers
    more, and reading no further bounds the memory a wrong URL can take."""
    received = bytearray()
    for chunk in response.iter_bytes():
        received += chunk
        if len(received) > MAX_RESPONSE_BYTES:
            break
    return bytes(received)
