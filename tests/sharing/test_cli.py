"""Management commands: success and failure paths; failures write nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from indicators.models import StixObject
from sharing.models import ApiToken, AuditEvent, Collection, CollectionEntry, Grant, Membership, Organisation
from sharing.tokens import TOKEN_RE

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()


def counts() -> tuple[int, ...]:
    return tuple(
        m.objects.count() for m in (Organisation, ApiToken, Collection, Grant, CollectionEntry, StixObject)
    )


@pytest.mark.django_db
class TestCreateOrg:
    def test_creates_an_organisation_with_a_stix_identity(self):
        lines = run("create_org", "Gamma Lab", "--kind", "lab", "--trusted")
        org = Organisation.objects.get(name="Gamma Lab")
        assert lines[-1] == org.identity_id and org.identity_id.startswith("identity--")
        assert org.review_policy == "trusted" and org.kind == "lab"
        assert org.identity["identity_class"] == "organization" and org.identity["name"] == "Gamma Lab"
        assert AuditEvent.objects.filter(action="organisation.create").count() == 1

    def test_default_policy_is_review(self):
        run("create_org", "Delta Cloud", "--kind", "cloud")
        assert Organisation.objects.get(name="Delta Cloud").review_policy == "review"

    @pytest.mark.parametrize(
        "args, message",
        [
            (["", "--kind", "lab"], "must not be empty"),
            (["   ", "--kind", "lab"], "must not be empty"),
            (["Gamma", "--kind", "bank"], "unknown kind 'bank'"),
            (["Gamma"], "--kind"),
        ],
    )
    def test_rejects_bad_input_and_writes_nothing(self, args, message):
        before = counts()
        with pytest.raises(CommandError, match=message):
            run("create_org", *args)
        assert counts() == before

    def test_rejects_a_duplicate_name_case_insensitively(self):
        run("create_org", "Gamma Lab", "--kind", "lab")
        with pytest.raises(CommandError, match="already exists"):
            run("create_org", "gamma lab", "--kind", "cloud")
        assert Organisation.objects.count() == 1


@pytest.mark.django_db
class TestIssueToken:
    def test_prints_the_token_alone_on_the_last_line(self, alice_lab):
        lines = run("issue_token", "--org", "Alice Lab", "--scopes", "read,write", "--expires-days", "30")
        assert TOKEN_RE.match(lines[-1])
        token = ApiToken.objects.get()
        assert token.scopes == "read,write" and token.expires_at is not None
        assert lines[-1] not in "\n".join(lines[:-1])

    @pytest.mark.parametrize(
        "args, message",
        [
            (["--org", "Nobody", "--scopes", "read"], "no organisation named 'Nobody'"),
            (["--org", "Alice Lab", "--scopes", "read,sudo"], "unknown scope 'sudo'"),
            (["--org", "Alice Lab", "--scopes", ""], "at least one scope"),
            (["--org", "Alice Lab", "--scopes", "read", "--expires-days", "-3"], "expiry"),
            (["--org", "Alice Lab", "--scopes", "read", "--expires-days", "soon"], "invalid int value"),
            (["--org", "Alice Lab", "--scopes", "read", "--allow-cidr", "bogus"], "not an IP network"),
            (["--scopes", "read"], "--org"),
        ],
    )
    def test_rejects_bad_input_and_writes_nothing(self, alice_lab, args, message):
        before = counts()
        with pytest.raises(CommandError, match=message):
            run("issue_token", *args)
        assert counts() == before


@pytest.mark.django_db
class TestCreateCollection:
    def test_creates_collection_and_grants_and_prints_its_id(self, alice_lab, bob_cloud):
        lines = run(
            "create_collection",
            "consortium",
            "--description",
            "AMBER indicators",
            "--grant",
            "Alice Lab:rw",
            "--grant",
            "Bob Cloud:r",
            "--tlp-ceiling",
            "green",
        )
        collection = Collection.objects.get(pk=uuid.UUID(lines[-1]))
        assert collection.description == "AMBER indicators"
        grants = {g.organisation.name: g for g in collection.grants.all()}
        assert (grants["Alice Lab"].can_read, grants["Alice Lab"].can_write) == (True, True)
        assert (grants["Bob Cloud"].can_read, grants["Bob Cloud"].can_write) == (True, False)
        assert {g.tlp_ceiling for g in grants.values()} == {"green"}

    def test_default_ceiling_is_amber(self, alice_lab):
        lines = run("create_collection", "x", "--grant", "Alice Lab:w")
        grant = Grant.objects.get(collection_id=lines[-1])
        assert (grant.can_read, grant.can_write, grant.tlp_ceiling) == (False, True, "amber")

    @pytest.mark.parametrize(
        "args, message",
        [
            (["", "--grant", "Alice Lab:r"], "must not be empty"),
            (["c", "--grant", "Alice Lab:x"], "bad grant"),
            (["c", "--grant", "Alice Lab"], "bad grant"),
            (["c", "--grant", ":rw"], "bad grant"),
            (["c", "--grant", "Nobody:r"], "no organisation named 'Nobody'"),
            (["c", "--grant", "Alice Lab:r", "--grant", "alice lab:w"], "more than once"),
            (["c", "--grant", "Alice Lab:r", "--tlp-ceiling", "white"], "unknown TLP level 'white'"),
            (["c"], "at least one --grant"),
        ],
    )
    def test_rejects_bad_input_and_writes_nothing(self, alice_lab, args, message):
        before = counts()
        with pytest.raises(CommandError, match=message):
            run("create_collection", *args)
        assert counts() == before

    def test_rejects_a_duplicate_title(self, alice_lab):
        run("create_collection", "dup", "--grant", "Alice Lab:r")
        with pytest.raises(CommandError, match="already exists"):
            run("create_collection", "DUP", "--grant", "Alice Lab:r")
        assert Collection.objects.count() == 1


@pytest.mark.django_db
class TestKnowledgePack:
    def test_loads_the_pack_into_a_public_collection_idempotently(self):
        lines = run("load_knowledge_pack")
        collection = Collection.objects.get(pk=uuid.UUID(lines[-1]))
        assert collection.is_public
        # 103 pack objects plus the 4 TLP 2.0 definitions the pack does not carry itself.
        assert collection.entries.count() == 107
        assert StixObject.objects.filter(type="campaign").count() == 3
        assert set(StixObject.objects.values_list("tlp", flat=True)) == {"clear"}
        before = counts()
        again = run("load_knowledge_pack")
        assert again[-1] == lines[-1]
        assert "0 newly published" in again[0]
        assert counts() == before


@pytest.mark.django_db
class TestDemo:
    def test_sets_up_organisations_tokens_collections_pack_and_admin(self):
        lines = run("demo", "--no-migrate")
        kinds = sorted(Organisation.objects.values_list("kind", flat=True))
        assert kinds == ["cloud", "hub", "lab", "lab"]
        tokens = [
            line.split()[-1] for line in lines if TOKEN_RE.search(line.split()[-1] if line.split() else "")
        ]
        assert len(tokens) == 4
        assert {c.title for c in Collection.objects.all()} >= {
            "seed-public",
            "consortium-indicators",
            "sightings-inbox",
        }
        from django.contrib.auth import get_user_model

        admin = get_user_model().objects.get(username="admin")
        password = next(line for line in lines if "password:" in line).split()[-1]
        assert admin.check_password(password) and admin.is_superuser
        assert Membership.objects.filter(user=admin, role="admin").exists()

    def test_with_a_keyring_it_imports_accounts_and_alerts_on_exactly_the_planted_cluster(
        self, settings, django_capture_on_commit_callbacks, eager_tasks
    ):
        from indicators.demo_accounts import DEMO_CLUSTER
        from indicators.hashing import Keyring
        from indicators.models import Account, Alert, Match

        settings.MDX_KEYRING = Keyring.for_tests()
        with django_capture_on_commit_callbacks(execute=True):
            run("demo", "--no-migrate")
        assert Account.objects.count() == 3000
        cluster = set(Account.objects.filter(clients__ja4=DEMO_CLUSTER.ja4).values_list("pk", flat=True))
        assert len(cluster) == DEMO_CLUSTER.size
        assert set(Alert.objects.values_list("account_id", flat=True)) == cluster
        assert Match.objects.count() == 3 * DEMO_CLUSTER.size  # payment, /24 and client fingerprint
        with django_capture_on_commit_callbacks(execute=True):
            run("demo", "--no-migrate")
        assert (Account.objects.count(), Match.objects.count()) == (3000, 3 * DEMO_CLUSTER.size)

    def test_running_it_again_revokes_old_demo_tokens_and_duplicates_nothing(self):
        run("demo", "--no-migrate")
        before = (Organisation.objects.count(), Collection.objects.count(), StixObject.objects.count())
        run("demo", "--no-migrate")
        assert (
            Organisation.objects.count(),
            Collection.objects.count(),
            StixObject.objects.count(),
        ) == before
        assert ApiToken.objects.filter(revoked_at=None).count() == 4
        assert ApiToken.objects.exclude(revoked_at=None).count() == 4


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory):
    """A migrated SQLite database for running manage.py as a real process."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"}}
    env.update(SQLITE_PATH=str(tmp_path_factory.mktemp("cli") / "cli.sqlite3"), SECRET_KEY="cli-test")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_scripts_can_chain_the_commands_through_stdout(sqlite_env):
    assert manage(sqlite_env, "create_org", "Script Lab", "--kind", "lab").returncode == 0
    token = manage(sqlite_env, "issue_token", "--org", "Script Lab", "--scopes", "read").stdout.splitlines()[
        -1
    ]
    assert TOKEN_RE.match(token)
    created = manage(sqlite_env, "create_collection", "scripted", "--grant", "Script Lab:rw")
    assert uuid.UUID(created.stdout.splitlines()[-1])


def test_bad_input_gives_one_line_on_stderr_and_a_non_zero_exit(sqlite_env):
    for args in (
        ["create_org", "X", "--kind", "bank"],
        ["issue_token", "--org", "Nobody", "--scopes", "read"],
        ["create_collection", "c", "--grant", "bad"],
        ["create_org"],
    ):
        result = manage(sqlite_env, *args)
        assert result.returncode != 0, args
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
