from django.core.management.base import BaseCommand

from billing import rollup


class Command(BaseCommand):
    help = (
        "Recompute the daily usage the graphs read from the events, in the current TIME_ZONE. Run it after "
        "changing TIME_ZONE (until then graphs sum the events, which is slower) or after loading events in bulk."
    )

    def handle(self, *args, **options):
        before = rollup.current_zone_name()
        rows = rollup.rebuild()
        zone = rollup.zone_name_of(rollup.zone())
        moved = f" (was {before})" if before and before != zone else ""
        self.stdout.write(f"Daily usage rebuilt in {zone}{moved}: {rows:,} rows.")
