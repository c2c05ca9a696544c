// A real OpenID Connect provider for the tests: the npm package oidc-provider (pinned in
// package.json / package-lock.json), configured from a JSON file that
// tests/oidc_provider.py writes: the issuer, the clients, and the test users.
//
//   node provider.mjs PORT CONFIG.json
//
// Sign-in at the provider is oidc-provider's own development login page (any
// password; the login names the account), then its consent page. Only the users in
// the config exist: an unknown login ends the flow with an error.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const [port, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf8"));

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    ...client,
  })),
  async findAccount(ctx, id) {
    const user = config.users[id];
    if (!user) return undefined;
    return { accountId: id, async claims() { return { sub: user.sub || id, ...user }; } };
  },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "given_name", "family_name"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  // The ID token carries the claims too (some IdPs put them only at userinfo; the
  // portal reads both).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: [config.cookie_key] },
  jwks: config.jwks,
  ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600,
    ...config.ttl },
  features: { devInteractions: { enabled: true } },
});
// Plain http on loopback in tests: oidc-provider would otherwise refuse to set its cookies.
provider.proxy = false;

provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`oidc-provider listening at ${config.issuer}`);
});
