"""The official MCP Python SDK as an OAuth client of Portcullis, driven by
tests/sdk_clients.rs:

    python sdk_client.py <mcp-url>

with PCL_EMAIL, PCL_PASSWORD, PCL_REDIRECT_URI and PCL_SCOPE in the
environment. Its OAuthClientProvider discovers the authorization server,
registers by DCR and runs the authorization code flow with PKCE; the browser
step signs in and consents by posting Portcullis's real forms. Prints one
JSON object: the client id, the authorization URL, the granted scope, the
tool names and whoami's structured result.
"""

import asyncio
import html
import json
import os
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client_info = client_info


def hidden(page: str, name: str) -> str:
    match = re.search(f'name="{name}" value="([^"]*)"', page)
    if not match:
        raise RuntimeError(f"no hidden field {name} in page:\n{page}")
    return html.unescape(match.group(1))


async def authorize_in_browser(url: str, email: str, password: str, approve: str) -> str:
    """Follows the authorization URL through sign-in and consent; returns the callback URL."""
    origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
    async with httpx2.AsyncClient(follow_redirects=False) as browser:
        location = url
        for _ in range(10):
            if not location.startswith(origin):
                return location
            page = await browser.get(location)
            if page.is_redirect:
                response = page
            else:
                if page.status_code != 200:
                    raise RuntimeError(f"{location} answered {page.status_code}: {page.text}")
                if urlparse(location).path == "/login":
                    form = {
                        "csrf": hidden(page.text, "csrf"),
                        "next": hidden(page.text, "next"),
                        "email": email,
                        "password": password,
                    }
                    response = await browser.post(f"{origin}/login", data=form)
                elif 'action="/consent"' in page.text:
                    form = {
                        "csrf": hidden(page.text, "csrf"),
                        "request": hidden(page.text, "request"),
                        "org_id": hidden(page.text, "org_id"),
                        "decision": "approve",
                    }
                    if "mcp:write" in approve:
                        form["grant_write"] = "on"
                    if "mcp:admin" in approve:
                        form["grant_admin"] = "on"
                    response = await browser.post(f"{origin}/consent", data=form)
                else:
                    raise RuntimeError(f"unexpected page at {location}:\n{page.text}")
                if not response.is_redirect:
                    raise RuntimeError(f"form post answered {response.status_code}: {response.text}")
            location = urljoin(location, response.headers["location"])
    raise RuntimeError("too many redirects")


async def main(mcp_url: str) -> dict:
    redirect_uri = os.environ["PCL_REDIRECT_URI"]
    scope = os.environ.get("PCL_SCOPE") or None
    seen = {}

    async def redirect_handler(authorization_url: str) -> None:
        seen["authorization_url"] = authorization_url
        seen["callback"] = await authorize_in_browser(
            authorization_url,
            os.environ["PCL_EMAIL"],
            os.environ["PCL_PASSWORD"],
            os.environ.get("PCL_APPROVE", "mcp:read mcp:write"),
        )

    async def callback_handler() -> AuthorizationCodeResult:
        callback = seen["callback"]
        if not callback.startswith(redirect_uri):
            raise RuntimeError(f"callback {callback} is not on {redirect_uri}")
        query = parse_qs(urlparse(callback).query)
        return AuthorizationCodeResult(
            code=query["code"][0],
            state=query.get("state", [None])[0],
            iss=query.get("iss", [None])[0],
        )

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK test",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope=scope,
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
            tools = await client.list_tools()
            whoami = await client.call_tool("whoami", {})
            if whoami.is_error:
                raise RuntimeError(f"whoami failed: {whoami}")
            return {
                "authorization_url": seen.get("authorization_url"),
                "client_id": storage.client_info.client_id,
                "granted_scope": storage.tokens.scope,
                "protocol_version": client.protocol_version,
                "tools": sorted(tool.name for tool in tools.tools),
                "whoami": whoami.structured_content,
            }


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1]))
    print(json.dumps(result))
