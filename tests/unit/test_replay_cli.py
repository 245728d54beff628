"""`make replay`'s window (devtools/replay.py): the times an operator writes, Stripe's 30 days,
and the mistakes answered with exit code 2 before anything is read or written."""

import io
from datetime import UTC, datetime

import pytest

from devtools import replay as replay_cli
from devtools.deliveries import UsageError

DAY = 86400
NOW = int(datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T00:00Z", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T06:30", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),  # UTC unless it says
        ("2026-12-01T08:30+02:00", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
        (" 1796515200 ", datetime.fromtimestamp(1796515200, UTC)),
    ],
)
def test_times_are_read_as_an_operator_writes_them(text, expected):
    assert replay_cli.parse_time(text) == int(expected.timestamp())


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "12/01/2026"])
def test_what_is_no_time_is_a_usage_error_that_shows_how_to_write_one(text):
    with pytest.raises(UsageError, match="2026-12-01T00:00Z or epoch seconds"):
        replay_cli.parse_time(text)


def test_the_window_ends_now_unless_told_and_never_in_the_future():
    assert replay_cli.window(str(NOW - DAY), None, NOW) == (NOW - DAY, NOW)
    assert replay_cli.window(str(NOW - DAY), str(NOW + DAY), NOW) == (NOW - DAY, NOW)
    assert replay_cli.window(str(NOW - 3 * DAY), str(NOW - DAY), NOW) == (NOW - 3 * DAY, NOW - DAY)


def test_a_window_older_than_stripes_30_days_starts_at_the_oldest_event_stripe_keeps(capsys):
    assert replay_cli.window(str(NOW - 45 * DAY), None, NOW) == (NOW - 30 * DAY, NOW)
    assert "Stripe keeps events for 30 days: reading from 2026-11-06 12:00:00" in capsys.readouterr().err


@pytest.mark.parametrize(("since", "until"), [(NOW, NOW - DAY), (NOW - DAY, NOW - DAY), (NOW + DAY, None)])
def test_an_empty_window_is_a_usage_error(since, until):
    with pytest.raises(UsageError, match="SINCE must be before UNTIL"):
        replay_cli.window(str(since), None if until is None else str(until), NOW)


def test_since_after_until_is_exit_code_2_before_anything_is_opened(capsys, monkeypatch):
    def no_deployment(*args):
        raise AssertionError("nothing is opened for a mistaken window")

    monkeypatch.setattr(replay_cli, "deployment", no_deployment)
    out = io.StringIO()

    code = replay_cli.main(["--since", "2026-12-03", "--until", "2026-12-01", "--apply"], out=out)

    assert code == 2
    assert capsys.readouterr().err == "error: SINCE must be before UNTIL (and before now)\n"
    assert out.getvalue() == ""


def test_eight_digits_are_a_date_and_longer_ones_epoch_seconds():
    from devtools.replay import parse_time

    assert parse_time("20261201") == parse_time("2026-12-01T00:00Z") == 1_796_083_200
    assert parse_time("1796083200") == 1_796_083_200
