// A real OpenID Connect provider (the npm package oidc-provider) for the single sign-on tests.
// Started by tests/oidc_provider/__init__.py:
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// oidc-provider 8.x: the last major that supports Node.js 20 (9.x wants 22).
// Its issuer is http://localhost:PORT: another site than the daemon's 127.0.0.1, as a real provider is.
// Its development login form takes any login name with any password; ACCOUNTS below gives each
// test account its claims. It prints "listening" once it accepts connections.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://localhost:${port}`;

const ACCOUNTS = {
  carol: { email: 'carol@example.com', email_verified: true, name: 'Carol Example' },
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Existing' },
  mallory: { email: 'mallory@example.com', email_verified: false, name: 'Mallory Unverified' },
  eve: { email: 'eve@elsewhere.test', email_verified: true, name: 'Eve Elsewhere' },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    const claims = ACCOUNTS[id] ?? { email: `${id}@unknown.test`, email_verified: false };
    return { accountId: id, async claims() { return { sub: `sub-${id}`, ...claims }; } };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The email in the ID token itself, as most providers send it, not only from the userinfo endpoint.
  conformIdTokenClaims: false,
  pkce: { required: () => true, methods: ['S256'] },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['bastion-test-provider-cookie-key'] },
});

// A test run's output stays readable: the development-only warnings go to stderr once.
provider.listen(Number(port), '127.0.0.1', () => { console.log('listening'); });
