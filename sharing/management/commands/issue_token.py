"""issue_token --org NAME --scopes read,write[,admin] [--expires-days N] [--allow-cidr CIDR ...]"""

from sharing.management.base import MdxCommand
from sharing.services import organisation_by_name, token_issue


class Command(MdxCommand):
    help = "Issue an API token for an organisation. The token is shown once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated: read, write, admin")
        parser.add_argument("--expires-days", type=int, default=None)
        parser.add_argument("--allow-cidr", action="append", default=[], help="restrict use to this network")
        parser.add_argument("--name", default="", help="a label for the token")

    def run(self, *, org, scopes, expires_days, allow_cidr, name, **_):
        organisation = organisation_by_name(org)
        token, plaintext = token_issue(
            organisation=organisation,
            scopes=scopes,
            expires_days=expires_days,
            allowed_cidrs=allow_cidr,
            name=name,
        )
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stdout.write(
            f"Token for {organisation.name} (scopes {token.scopes}, expires {expiry}); "
            "store it now, it is not shown again:"
        )
        self.stdout.write(plaintext)
