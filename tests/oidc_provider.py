"""A real OpenID Connect provider process for the tests: Node running the npm
package `oidc-provider` (tests/oidc/provider.mjs, pinned in tests/oidc/package.json
and package-lock.json; `npm ci` installs it into tests/oidc/node_modules, which git
ignores, the first time it is needed).

    provider = start_oidc_provider(workdir, clients=[Client("portal", "secret", [redirect])],
                                   users={"sam": {"email": "sam@acme.example", "groups": ["admins"]}})
    provider.issuer  ...  provider.stop()

Its signing key is an RSA key made per run (`provider.jwks` holds the public half),
so ID tokens it issues verify only against this process — for the portal's SSO
(tests/e2e/test_sso.py) and for anything else that needs a real IdP's ID tokens.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import support

OIDC_DIR = support.ROOT / "tests" / "oidc"


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    # Any other oidc-provider client metadata (e.g. {"token_endpoint_auth_method": "none"}
    # for a public client, or other grant/response types): it overrides the defaults.
    metadata: dict = field(default_factory=dict)


@dataclass
class OIDCProvider:
    issuer: str
    clients: list[Client]
    users: dict[str, dict]
    process: subprocess.Popen
    public_jwks: dict = field(default_factory=dict)
    log_path: Path | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            support.stop_process(self.process)

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"


def install() -> None:
    """`npm ci` from the lock file, once per lock file (a stamp in node_modules)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed for the OIDC provider (make system-deps)")
    lock = (OIDC_DIR / "package-lock.json").read_bytes()
    stamp = OIDC_DIR / "node_modules" / f".installed-{hashlib.sha1(lock).hexdigest()[:12]}"
    if stamp.exists():
        return
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=OIDC_DIR,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"npm ci for the OIDC provider failed:\n{result.stdout}\n{result.stderr}")
    stamp.touch()


def _signing_jwks() -> tuple[dict, dict]:
    """(private JWKS for the provider, public JWKS): a fresh RSA key."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    kid = hashlib.sha256(public["n"].encode()).hexdigest()[:16]
    for jwk in (private, public):
        jwk.pop("key_ops", None)  # PyJWT writes "sign" into the private half; the provider would publish it
        jwk.update(kid=kid, use="sig", alg="RS256")
    return {"keys": [private]}, {"keys": [public]}


def start_oidc_provider(workdir: Path, clients: list[Client], users: dict[str, dict],
                        ttl: dict | None = None) -> OIDCProvider:
    """`ttl`: oidc-provider's lifetimes to change, e.g. {"IdToken": 20} (seconds)."""
    install()
    workdir.mkdir(parents=True, exist_ok=True)
    port = support.free_port()
    issuer = f"http://127.0.0.1:{port}"
    private_jwks, public_jwks = _signing_jwks()
    config = workdir / "oidc-provider.json"
    config.write_text(json.dumps({
        "issuer": issuer,
        "clients": [{"client_id": c.client_id, "redirect_uris": c.redirect_uris,
                     **({"client_secret": c.client_secret} if c.client_secret else {}), **c.metadata}
                    for c in clients],
        "users": users, "jwks": private_jwks, "ttl": ttl or {}, "cookie_key": hashlib.sha256(str(port).encode()).hexdigest(),
    }))
    config.chmod(0o600)
    log_path = workdir / "oidc-provider.log"
    proc = support.start_process(["node", str(OIDC_DIR / "provider.mjs"), str(port), str(config)],
                                 issuer + "/.well-known/openid-configuration", log_path=log_path)
    return OIDCProvider(issuer, clients, users, proc, public_jwks, log_path)


# --- pytest: one provider per session, for the stack's portal -------------------------------

PORTAL_CLIENT_ID = "dualkey-portal"
PORTAL_CLIENT_SECRET = "dualkey-portal-test-secret"
# The IdP's people: `login` at the provider's page -> claims. The groups claim of
# one of them holds the admin group the SSO tests configure.
TEST_USERS = {
    "sam": {"email": "sam@stark.example", "email_verified": True, "given_name": "Sam", "family_name": "Stark",
            "groups": ["engineering"]},
    "tony": {"email": "tony@stark.example", "email_verified": True, "given_name": "Tony", "family_name": "Stark",
             "groups": ["engineering", "portal-admins"]},
    "mallory": {"email": "mallory@elsewhere.example", "email_verified": True, "groups": []},
}


def oidc_provider_fixture(stack_fixture: str = "dualkey_stack"):
    """A session fixture: the provider with a client whose redirect URI is the stack's
    portal's SSO callback (and its localhost twin's, if started later)."""

    @pytest.fixture(scope="session")
    def oidc_provider(request, tmp_path_factory):
        stack = request.getfixturevalue(stack_fixture)
        client = Client(PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET, [stack.portal_url + "/accounts/sso/callback/"])
        provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"), [client], TEST_USERS)
        yield provider
        provider.stop()

    return oidc_provider
