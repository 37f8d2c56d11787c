"""Work run on a schedule by the django-q2 cluster (``manage.py qcluster``, brokered over the database).

The schedule is kept by :func:`ensure_gc_schedule`, which runs after every ``migrate``: one django-q2
Schedule named ``swr-gc`` calling :func:`collect_garbage` every SWR_GC_INTERVAL_MINUTES (0: none).
"""

from django.conf import settings

from swr.audit import Actor
from swr.distribution import gc

GC_SCHEDULE = "swr-gc"


def collect_garbage() -> str:
    """One garbage collection (swr/distribution/gc.py) with the settings' grace period; its summary."""
    return gc.collect(actor=Actor.command()).summary()


def ensure_gc_schedule(using: str = "default", **kwargs) -> None:
    """post_migrate: make the ``swr-gc`` schedule match SWR_GC_INTERVAL_MINUTES (create, update or remove it)."""
    from django_q.models import Schedule

    schedules = Schedule.objects.using(using)
    minutes = settings.SWR_GC_INTERVAL_MINUTES
    if minutes <= 0:
        schedules.filter(name=GC_SCHEDULE).delete()
        return
    schedules.update_or_create(
        name=GC_SCHEDULE,
        defaults={
            "func": f"{__name__}.collect_garbage",
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        },
    )
