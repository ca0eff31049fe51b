"""An infrastructure failure is retried after RENDER_RETRY_INTERVALS in order: the first retry
waits the first interval (RQ reads an interval list from its end, so a list longer than the
retries made the first retry wait the second interval, 60 s instead of 10 s)."""
from __future__ import annotations


def test_first_retry_waits_the_first_interval(settings, redis_conn):
    from rq import Retry
    from rq.job import Job as RQJob

    from jobs.services.dispatch import _retry_intervals

    settings.RENDER_RETRY_INTERVALS = [10, 60, 300]
    retries = 2  # RENDER_MAX_ATTEMPTS 3
    job = RQJob.create("builtins.print", connection=redis_conn,
                       retry=Retry(max=retries, interval=_retry_intervals(retries)))
    waits = []
    while job.retries_left:
        waits.append(job.get_retry_interval())
        job.retries_left -= 1
    assert waits == [10, 60]
    # more retries than intervals: RQ uses the first interval for the extra ones
    settings.RENDER_RETRY_INTERVALS = [5]
    job = RQJob.create("builtins.print", connection=redis_conn, retry=Retry(max=3, interval=_retry_intervals(3)))
    assert job.get_retry_interval() == 5
