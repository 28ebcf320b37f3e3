// A real OpenID Provider for the federated sign-in tests: node-oidc-provider
// (OpenID-certified) on loopback, with its development login and consent
// pages. Run by tests/federation_browser.rs:
//
//   node oidc_provider.mjs
//     prints {"issuer": "http://127.0.0.1:<port>"} once listening, then reads
//     one JSON line on stdin: {"redirect_uri", "client_id", "client_secret",
//     "groups": {"<login>": ["<group>", …]}}, configures its one client and
//     prints {"ready": true}.
//
// Any login name is accepted with any password (devInteractions); the
// account's email is <login>@upstream.example (verified) and its `groups`
// claim comes from the table above.
import http from 'node:http';
import { once } from 'node:events';
import readline from 'node:readline';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const issuer = `http://127.0.0.1:${server.address().port}`;
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

const lines = readline.createInterface({ input: process.stdin });
const [line] = await once(lines, 'line');
const setup = JSON.parse(line);

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: setup.client_id,
      client_secret: setup.client_secret,
      redirect_uris: [setup.redirect_uri],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Scope claims in the ID token itself (the relying party reads only it).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['portcullis-test-only-cookie-key'] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: `${id}@upstream.example`,
      email_verified: true,
      name: `Upstream ${id}`,
      groups: setup.groups?.[id] ?? [],
    }),
  }),
});
// Silence the development-mode warnings' stack traces on stderr noise.
provider.on('server_error', (_ctx, error) => console.error('oidc-provider error', error));
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
