"""Queue (or run here with --now) the composition of a call's recording, e.g. after a failure
or to recompose with a newer layout. Every run writes a new file; digests of earlier files stay
in the audit log."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.recordings.actions.composition import enqueue_composition
from apps.recordings.jobs import compose_recording
from apps.recordings.management.commands.verify_recordings import find_call
from apps.recordings.models import Recording


class Command(BaseCommand):
    help = "Compose a call's recording (CALL = UUID or call number) on the compose queue."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("call")
        parser.add_argument("--now", action="store_true", help="run here instead of queueing")
        parser.add_argument(
            "--again", action="store_true", help="recompose a recording that is already ready"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call = find_call(options["call"])
        recording = Recording.objects.filter(call=call).first()
        if recording is None:
            raise CommandError("this call has no recording")
        if recording.state == "ready" and not options["again"]:
            raise CommandError("the recording is ready; use --again to recompose it")
        again = bool(options["again"])
        if options["now"]:
            result = compose_recording(str(recording.pk), again=again)
            self.stdout.write(str(result))
        else:
            job_id = enqueue_composition(recording_id=recording.pk, again=again)
            self.stdout.write(f"queued {job_id}")
