"""What every destination shares (destinations/base.py): a platform's answer."""

from checkout_conversions.destinations.base import Answer, Verdict


def test_outcome_sent_property():
    """An answer is accepted (the old Outcome's `sent`) only when the platform took the event."""
    assert Answer(Verdict.ACCEPTED).accepted is True
    assert Answer(Verdict.RETRY).accepted is False
    assert Answer.failure("timed out").accepted is False
