// An MCP client (the official TypeScript SDK, from tests/js) connects to
// Portcullis whose users sign in through an upstream OpenID Provider; the
// browser part runs in headless Chromium. Run by tests/federation_browser.rs:
//
//   node federation.mjs <mcp url> <provider name> <upstream login> <redirect uri>
//   node federation.mjs <mcp url> --password <email> <redirect uri> <password>
//
// The second form signs in with Portcullis's own password form instead, so
// the two flows can be timed against each other (scripts/measure-sign-in).
//
// 1. The SDK's auth() discovers Portcullis, registers (DCR) and builds the
//    authorization URL with PKCE.
// 2. Chromium opens it: Portcullis's sign-in page → "Continue with <provider
//    name>" → the provider's own login and consent pages → back to
//    Portcullis's consent page → Allow → the client's redirect URI
//    (intercepted here).
// 3. auth() exchanges the code; the SDK's client calls whoami over /mcp.
// Prints one JSON object: {whoami, tools, granted_scope, pages, timings}.
import { chromium } from 'playwright-core';
import { auth } from '../js/node_modules/@modelcontextprotocol/sdk/dist/esm/client/auth.js';
import { Client } from '../js/node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js';
import { StreamableHTTPClientTransport } from '../js/node_modules/@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js';

const [mcpUrl, providerName, login, redirect, password] = process.argv.slice(2);
const byPassword = providerName === '--password';
if (!redirect) {
  console.error('usage: federation.mjs <mcp url> <provider name> <upstream login> <redirect uri>');
  process.exit(2);
}

const pages = [];

class ChromiumProvider {
  constructor(browser) {
    this.browser = browser;
  }
  get redirectUrl() {
    return redirect;
  }
  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK (federated sign-in test)',
      redirect_uris: [redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return 'fed-state-1';
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
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url) {
    const context = await this.browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const origin = new URL(redirect).origin;
    await page.route(`${origin}/**`, (route) => route.fulfill({ status: 200, body: 'callback reached' }));
    page.on('requestfailed', (request) => pages.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) pages.push(frame.url());
    });
    await page.goto(url.href);
    if (byPassword) {
      await page.locator('input[name="email"]').fill(login);
      await page.locator('input[name="password"]').fill(password);
      await page.locator('form[action="/login"] button[type="submit"]').click();
    } else {
      // Portcullis's sign-in page offers the provider.
      await page.getByRole('link', { name: `Continue with ${providerName}` }).click();
      // node-oidc-provider's development login page, then its consent page.
      await page.locator('input[name="login"]').fill(login);
      await page.locator('input[name="password"]').fill('any password');
      await page.locator('button[type="submit"]').click();
      await page.locator('button[type="submit"]').click();
    }
    // Back on Portcullis: its consent page.
    await page.locator('button[name="decision"][value="approve"]').click();
    await page.waitForURL((u) => u.href.startsWith(redirect));
    const callback = new URL(page.url());
    await context.close();
    if (callback.searchParams.get('state') !== 'fed-state-1') throw new Error(`state not echoed: ${callback}`);
    this.code = callback.searchParams.get('code');
    if (!this.code) throw new Error(`no code in ${callback}`);
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'],
  });
  try {
    const provider = new ChromiumProvider(browser);
    const serverUrl = new URL(mcpUrl);
    const scope = 'mcp:read mcp:write mcp:admin';
    const started = performance.now();
    const first = await auth(provider, { serverUrl, scope });
    if (first !== 'REDIRECT') throw new Error(`auth() answered ${first} before sign-in`);
    const second = await auth(provider, { serverUrl, scope, authorizationCode: provider.code });
    if (second !== 'AUTHORIZED') throw new Error(`auth() with the code answered ${second}`);
    const flowMs = performance.now() - started;
    const client = new Client({ name: 'portcullis-federation-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }));
    const { tools } = await client.listTools();
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();
    return {
      whoami: whoami.structuredContent ?? null,
      tools: tools.map((t) => t.name).sort(),
      granted_scope: provider.tokens().scope,
      client_id: provider.client.client_id,
      pages,
      timings: { flow_ms: flowMs },
    };
  } finally {
    await browser.close();
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (error) {
  console.error(error?.stack ?? String(error));
  console.error(`pages: ${JSON.stringify(pages)}`);
  process.exit(1);
}
