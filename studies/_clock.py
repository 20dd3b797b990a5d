"""One way to write a duration, for the live progress view and the run's summary alike."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``seconds`` as a person reads it: whole seconds under a minute, then minutes, then hours.

    Example:
        >>> format_duration(7.4), format_duration(65), format_duration(3 * 3600 + 125)
        ('7s', '1m 05s', '3h 02m')
    """
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
