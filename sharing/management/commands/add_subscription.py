"""add_subscription --name N --discovery-url URL --collection ID (--token T | --token-env VAR) --into LOCAL_ID
[--review] [--interval SECONDS] [--inbox REMOTE_INBOX_ID] [--identity identity--…]"""

import os
import sys

from sharing.federation import subscription_add
from sharing.management.base import MdxCommand


class Command(MdxCommand):
    help = (
        "Subscribe to a remote TAXII 2.1 collection. Contacts no network (the first poll resolves the "
        "API root). Prints the subscription id alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--name", required=True, help="unique; also names the organisation objects come from"
        )
        parser.add_argument(
            "--discovery-url", required=True, help="the remote's TAXII discovery URL (/taxii2/)"
        )
        parser.add_argument("--collection", required=True, help="the remote collection id (UUID)")
        parser.add_argument(
            "--token", help="the remote API token, stored encrypted; '-' reads it from standard input"
        )
        parser.add_argument("--token-env", help="instead of --token: the environment variable holding it")
        parser.add_argument("--into", required=True, help="id of the local collection objects land in")
        parser.add_argument("--review", action="store_true", help="hold pulled objects for review")
        parser.add_argument("--interval", type=int, default=300, help="seconds between polls (default 300)")
        parser.add_argument(
            "--inbox", help="the remote hub's feedback inbox collection id (sightings and opinions go there)"
        )
        parser.add_argument(
            "--identity", help="this node's organisation identity at the remote hub (identity--…), if known"
        )

    def run(
        self,
        *,
        name,
        discovery_url,
        collection,
        token,
        token_env,
        into,
        review,
        interval,
        inbox,
        identity,
        **_,
    ):
        if token == "-":
            token = sys.stdin.readline().strip()
        subscription = subscription_add(
            name=name,
            discovery_url=discovery_url,
            collection_id=collection,
            token=token,
            token_env=token_env,
            into=into,
            review=review,
            interval=interval,
            inbox=inbox,
            identity=identity,
        )
        where = f"env {subscription.token_env}" if subscription.token_env else "encrypted in the database"
        if subscription.token_env and not os.environ.get(subscription.token_env):
            self.stderr.write(f"warning: {subscription.token_env} is not set in this environment")
        self.stdout.write(
            f"Subscribed {subscription.name!r} to {subscription.discovery_url} collection "
            f"{subscription.remote_collection_id} into {subscription.collection.title!r} "
            f"({'review' if review else 'trusted'}, every {interval} s, token {where})"
        )
        self.stdout.write(str(subscription.pk))
