"""Remove the registry's blobs and bytes that nothing uses (swr/distribution/gc.py), while pushes go on."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from swr.audit import Actor
from swr.distribution import gc


class Command(BaseCommand):
    help = (
        "Garbage-collect the registry: remove blobs (row and bytes) that no manifest, repository link or open "
        "upload uses, once older than the grace period, with the parts of expired or abandoned uploads and, on "
        "an object store, the multipart uploads a killed worker left incomplete. Safe while the registry serves "
        "pushes. Runs on a schedule too (SWR_GC_INTERVAL_MINUTES, manage.py qcluster)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=None,
            help=f"Keep what is younger than this (default SWR_GC_GRACE_MINUTES, now "
            f"{int(settings.SWR_GC_GRACE.total_seconds() // 60)}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be removed.")
        parser.add_argument(
            "--delete-untagged",
            action="store_true",
            default=None,
            help="Also remove manifests no tag names (not listed by a kept index, not referring to a kept "
            "manifest), and then their blobs. Default: SWR_GC_DELETE_UNTAGGED (off: untagged manifests stay "
            "pullable by digest).",
        )
        parser.add_argument(
            "--stray-bytes",
            action="store_true",
            help="Also list the blob store's blobs/ and remove what no blob and no open upload names, once older "
            "than the grace period and SWR_UPLOAD_TTL_HOURS (bytes a failed delete or a killed worker left). Only "
            "for a store that this database alone uses: it removes every blob this database does not know.",
        )

    def handle(self, *args, grace_minutes=None, dry_run=False, delete_untagged=None, stray_bytes=False, **options):
        if grace_minutes is not None and grace_minutes < 0:
            raise CommandError("--grace-minutes cannot be negative.")
        grace = None if grace_minutes is None else timedelta(minutes=grace_minutes)
        report = gc.collect(
            actor=Actor.command(),
            grace=grace,
            dry_run=dry_run,
            delete_untagged=delete_untagged,
            stray_bytes=stray_bytes,
        )
        self.stdout.write(report.summary()[0].upper() + report.summary()[1:] + ".")
