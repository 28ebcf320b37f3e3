// The official TypeScript MCP SDK as a machine client of Portcullis, driven
// by tests/sdk_machine_clients.rs. One run = one way of getting a token
// without a browser:
//
//   node machine_client.mjs <mcp-url> <mode>
//     client-credentials  the SDK's ClientCredentialsProvider (client_secret_basic)
//     private-key-jwt     the SDK's PrivateKeyJwtProvider (client_credentials + private_key_jwt)
//     id-jag              a provider whose prepareTokenRequest() sends the
//                         jwt-bearer grant with an ID-JAG minted by the test's
//                         enterprise IdP (the SDK ships no cross-app-access
//                         helper in this version)
//
// Inputs from the environment: PCL_ISSUER, PCL_CLIENT_ID, PCL_CLIENT_SECRET,
// PCL_PRIVATE_KEY (PKCS#8 PEM), PCL_ASSERTION, PCL_SCOPE. Prints one JSON
// object: the tool names and whoami's structured result.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ClientCredentialsProvider,
  PrivateKeyJwtProvider,
} from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [mcpUrl, mode] = process.argv.slice(2);
const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required for mode ${mode}`);
  return value;
};

/** The jwt-bearer grant (RFC 7523 §2.1) with an identity assertion. */
class IdJagProvider {
  constructor({ clientId, clientSecret, assertion, scope }) {
    this.client = { client_id: clientId, client_secret: clientSecret };
    this.assertion = assertion;
    this.scope = scope;
    this.saved = undefined;
  }
  get redirectUrl() {
    return undefined;
  }
  get clientMetadata() {
    return { client_name: 'ID-JAG test client', redirect_uris: [], grant_types: ['urn:ietf:params:oauth:grant-type:jwt-bearer'] };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  redirectToAuthorization() {
    throw new Error('no browser in the jwt-bearer grant');
  }
  saveCodeVerifier() {}
  codeVerifier() {
    throw new Error('no PKCE in the jwt-bearer grant');
  }
  prepareTokenRequest(scope) {
    const params = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: this.assertion,
    });
    const wanted = scope ?? this.scope;
    if (wanted) params.set('scope', wanted);
    return params;
  }
}

function provider() {
  const expectedIssuer = env('PCL_ISSUER');
  const scope = process.env.PCL_SCOPE || undefined;
  switch (mode) {
    case 'client-credentials':
      return new ClientCredentialsProvider({
        clientId: env('PCL_CLIENT_ID'),
        clientSecret: env('PCL_CLIENT_SECRET'),
        expectedIssuer,
        scope,
      });
    case 'private-key-jwt':
      return new PrivateKeyJwtProvider({
        clientId: env('PCL_CLIENT_ID'),
        privateKey: env('PCL_PRIVATE_KEY'),
        algorithm: 'ES256',
        expectedIssuer,
        scope,
      });
    case 'id-jag':
      return new IdJagProvider({
        clientId: env('PCL_CLIENT_ID'),
        clientSecret: env('PCL_CLIENT_SECRET'),
        assertion: env('PCL_ASSERTION'),
        scope,
      });
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

async function main() {
  const authProvider = provider();
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider });
  const client = new Client({ name: 'portcullis-machine-test', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  if (whoami.isError) throw new Error(`whoami failed: ${JSON.stringify(whoami)}`);
  const tokens = authProvider.tokens();
  await client.close();
  return {
    tools: tools.map((t) => t.name).sort(),
    whoami: whoami.structuredContent ?? null,
    had_refresh_token: typeof tokens?.refresh_token === 'string',
    granted_scope: tokens?.scope ?? null,
  };
}

main().then(
  (out) => {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  },
  (error) => {
    process.stderr.write(`${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
