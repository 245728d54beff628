"""A provisioning transaction that committed, but whose answer was lost: botocore retries it.

Real DynamoDB recognises the retry by its ClientRequestToken and answers success; an emulator
(moto) may instead cancel it because the session now exists. Either way the webhook must report
what happened: this request provisioned the session, once.
"""

from typing import Any

from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)


class LostFirstAnswer:
    """A DynamoDB client whose TransactWriteItems runs twice, as a retry after a lost answer
    would: the first attempt commits, the caller sees only the second attempt's outcome."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != "transact_write_items":
            return attribute

        def twice(**kwargs: Any) -> Any:
            attribute(**kwargs)
            return attribute(**kwargs)

        return twice


def test_a_retried_transaction_that_had_committed_is_reported_provisioned(
    env, app, deliver, stream, db, tiktok_server, emf, monkeypatch
):
    monkeypatch.setattr(app, "dynamodb", LostFirstAnswer(app.dynamodb))
    session = checkout_session()

    answer = deliver(stripe_event(session=session))

    assert answer.status == 200
    assert answer.body["status"] == "provisioned"
    assert answer.body["deliveries"]["tiktok"] == {"status": "pending"}
    assert emf.total("Provisioned") == 1
    assert emf.total("Duplicates") == 0
    assert len(db.customers()) == 1
    stream.drain()
    assert [event["event_id"] for event in tiktok_server.events()] == [session["id"]]


def test_a_real_redelivery_is_still_a_duplicate(env, app, deliver, db, emf, monkeypatch):
    event = stripe_event(session=checkout_session())
    assert deliver(event).body["status"] == "provisioned"
    monkeypatch.setattr(app, "dynamodb", LostFirstAnswer(app.dynamodb))

    again = deliver(event)

    assert again.status == 200
    assert again.body["status"] == "duplicate"
    assert emf.total("Provisioned") == 1
    assert emf.total("Duplicates") == 1
    assert len(db.customers()) == 1
