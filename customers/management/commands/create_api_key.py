"""`python manage.py create_api_key --env sandbox --name "Backend"`: prints a new secret key, once."""

from django.core.management.base import BaseCommand, CommandError

from customers.errors import ServiceError
from customers.models import Env
from customers.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create a secret key for the REST API and print it. Only its hash is stored: copy it now."

    def add_arguments(self, parser):
        parser.add_argument(
            "--env", required=True, choices=Env.values, help="sandbox (an am_sk_test_ key) or live (an am_sk_live_ key)"
        )
        parser.add_argument("--name", required=True, help="What uses the key, e.g. 'Production backend'")

    def handle(self, *args, env: str, name: str, **options):
        try:
            api_key, raw_key = api_key_create(env=env, name=name, actor=None)
        except ServiceError as exc:
            raise CommandError(exc.message)
        self.stderr.write(f"Created {env} key “{api_key.name}”. It is shown this once:")
        self.stdout.write(raw_key)
