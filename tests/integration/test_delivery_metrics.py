"""The operator's dashboard metrics, as the real functions emit them: each destination's delivery
lag (seconds from the payment to the platform's acceptance, when a delivery is recorded sent) and
the redrive's backlog (the due deliveries each run found)."""

import time

from tests.factories import checkout_session, stripe_event

pytest_plugins = ("tests.integration.redrive_fixtures",)


def metric_values(emf, name):
    """(values, unit) of metric `name` across the EMF blobs printed so far."""
    values, units = [], set()
    for blob in emf.blobs():
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Name"] == name:
                    units.add(metric["Unit"])
                    value = blob[name]
                    values.extend(value if isinstance(value, list) else [value])
    return values, units


def test_each_sent_delivery_reports_its_lag_from_the_payment_per_destination(
    both_env, checkout, db, tiktok_server, meta_server, emf
):
    paid_at = int(time.time()) - 90  # Stripe's event, 90 s ago (the webhook arrived late)
    session = checkout_session()

    answer = checkout(stripe_event(session=session, created=paid_at))
    accepted_by = int(time.time())

    assert answer.body["status"] == "provisioned"
    for label, destination in (("TikTok", "tiktok"), ("Meta", "meta")):
        assert db.delivery(session["id"], destination)["delivery_status"] == "sent"
        [lag], units = metric_values(emf, f"{label}DeliveryLag")
        assert units == {"Seconds"}
        assert 90 <= lag <= accepted_by - paid_at


def test_a_failed_attempt_reports_no_lag_and_the_redrives_send_reports_it_with_the_backlog(
    redrive_env, checkout, db, redrive, tiktok_server, emf
):
    tiktok_server.behave("http:503", "ok")
    session = checkout_session()
    event = stripe_event(session=session)

    checkout(event)

    assert db.delivery(session["id"])["delivery_status"] == "failed"
    assert metric_values(emf, "TikTokDeliveryLag") == ([], set())
    an_hour_later = event["created"] + 3600

    assert redrive(at=an_hour_later) == {"sent": 1}
    emf.flush()

    assert metric_values(emf, "TikTokDeliveryLag") == ([3600], {"Seconds"})
    assert emf.total("TikTokRedriveBacklog") == 1
    assert redrive(at=an_hour_later + 1) == {}
    emf.flush()
    backlog, _ = metric_values(emf, "TikTokRedriveBacklog")
    assert backlog == [1, 0]  # one per run, an empty run included: the dashboard shows 0, not a gap
