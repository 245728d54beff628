"""The DynamoDB calls every store module makes, with one translation of DynamoDB's errors:
StoreError (ConcurrentUpdate for a write that met a transaction), never botocore's own."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from checkout_conversions.outbox.model import ConcurrentUpdate, StoreError
from checkout_conversions.store.items import from_item

CONFLICT_ATTEMPTS = 3
Result = TypeVar("Result")


class ConditionFailed(Exception):
    """A conditional write's condition did not hold; `item` is the item as it was, when asked for."""

    def __init__(self, item: dict[str, Any] | None):
        super().__init__("condition failed")
        self.item = item


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "ClientError"))


@contextmanager
def translated_errors() -> Iterator[None]:
    """botocore's errors as StoreError."""
    try:
        yield
    except ClientError as error:
        raise StoreError(error_code(error)) from error
    except BotoCoreError as error:
        raise StoreError(type(error).__name__) from error


def write(call: Callable[[], Result]) -> Result:
    """A conditional write: ConditionFailed when its condition does not hold. A write that meets a
    transaction on the same item (a duplicate delivery being checked) is tried again, briefly:
    DynamoDB refuses it for that instant and botocore does not retry it."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return call()
        except ClientError as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(from_item(error.response.get("Item"))) from None
            if code == "TransactionConflictException":
                if attempt < CONFLICT_ATTEMPTS:
                    time.sleep(0.05 * attempt)
                    continue
                raise ConcurrentUpdate(code) from error
            raise StoreError(code) from error
        except BotoCoreError as error:
            raise StoreError(type(error).__name__) from error
    raise AssertionError("unreachable")
