// Drives Microsoft's official libraries against the emulator with nothing changed but the authority and
// the Graph base URL: MSAL Node (authorization code + PKCE, refresh, client credentials) and the
// Microsoft Graph JS client (a full message delta round, then an incremental one, then a round through the
// SDK's request builder and PageIterator with delta addressed by its full function name).
import * as msal from "@azure/msal-node";
import { Client, PageIterator } from "@microsoft/microsoft-graph-client";

const base = process.env.EMU_BASE; // e.g. https://127.0.0.1:PORT
if (!base) throw new Error("EMU_BASE not set");
const host = new URL(base).host; // host:port, for MSAL knownAuthorities
const hostname = new URL(base).hostname; // the Graph client matches custom hosts without the port
const tenant = "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f";
const clientId = "11111111-2222-4333-8444-555555555555";
const redirectUri = "http://127.0.0.1:3000/oauth/office365/callback";
const scopes = ["User.Read", "Mail.Read"];

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

// Only the authority changes; knownAuthorities tells MSAL not to ask login.microsoftonline.com about it.
const cca = new msal.ConfidentialClientApplication({
  auth: { clientId, clientSecret: "demo-client-secret", authority: `${base}/${tenant}`, knownAuthorities: [host] },
});

// 1. Authorization code with PKCE. The "browser" part: fill in the emulator's sign-in and consent forms.
const pkce = await new msal.CryptoProvider().generatePkceCodes();
const authUrl = await cca.getAuthCodeUrl({
  scopes, redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: "S256", state: "msal-state", loginHint: "alice@northwind.test",
});
check(authUrl.startsWith(`${base}/${tenant}/oauth2/v2.0/authorize?`), "MSAL builds the authorize URL on the emulator");
const flowOf = (html) => /name="flow" value="([^"]+)"/.exec(html)?.[1];
let page = await fetch(authUrl, { redirect: "manual" });
let html = await page.text();
const post = (fields) => fetch(`${base}/${tenant}/login`, {
  method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields),
});
page = await post({ flow: flowOf(html), email: "alice@northwind.test", password: "m365-demo", action: "signin" });
if (page.status === 200) {
  html = await page.text();
  check(html.includes("Permissions requested"), "consent page shown");
  page = await post({ flow: flowOf(html), action: "accept" });
}
check(page.status === 302, "redirected back to the app");
const back = new URL(page.headers.get("location"));
check(back.searchParams.get("state") === "msal-state", "state echoed");
const code = back.searchParams.get("code");
const byCode = await cca.acquireTokenByCode({ code, scopes, redirectUri, codeVerifier: pkce.verifier });
check(!!byCode.accessToken, "acquireTokenByCode returned an access token");
check(byCode.account?.username === "alice@northwind.test", "account from the id_token");
check(byCode.account?.tenantId === tenant, "tenant id from the id_token");

// 2. Refresh: force MSAL to use its cached refresh token.
const refreshed = await cca.acquireTokenSilent({ account: byCode.account, scopes, forceRefresh: true });
check(!!refreshed.accessToken && refreshed.accessToken !== byCode.accessToken, "acquireTokenSilent(forceRefresh) refreshed the token");

// 3. Client credentials (after an admin has granted application permissions).
const grant = await fetch(`${base}/_emulator/tenants/${tenant}/admin-consent`, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ client_id: clientId, application: ["Mail.Read", "User.Read.All"] }),
});
check(grant.ok, "admin consent granted through the control API");
const app = await cca.acquireTokenByClientCredential({ scopes: ["https://graph.microsoft.com/.default"] });
check(!!app?.accessToken, "acquireTokenByClientCredential returned an app token");

// 4. Graph JS client: full delta round with the delegated token, then an incremental round.
const graph = Client.init({
  authProvider: (done) => done(null, refreshed.accessToken),
  baseUrl: `${base}/`,
  defaultVersion: "v1.0",
  customHosts: new Set([hostname]),
});
const me = await graph.api("/me").get();
check(me.userPrincipalName === "alice@northwind.test", "Graph client GET /me");
async function round(start) {
  let res = await graph.api(start).header("Prefer", 'odata.maxpagesize=10, IdType="ImmutableId"').get();
  const items = [...res.value];
  let pages = 1;
  while (res["@odata.nextLink"]) {
    res = await graph.api(res["@odata.nextLink"]).header("Prefer", 'odata.maxpagesize=10, IdType="ImmutableId"').get();
    items.push(...res.value);
    pages += 1;
  }
  return { items, pages, deltaLink: res["@odata.deltaLink"] };
}
const full = await round("/me/mailFolders/inbox/messages/delta");
check(full.pages > 1 && full.items.length > 10, `full delta round: ${full.items.length} messages in ${full.pages} pages`);
check(!!full.deltaLink, "deltaLink at the end of the round");
const added = await fetch(`${base}/_emulator/mailboxes/alice@northwind.test/messages`, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ container: "inbox", fields: { subject: "Hello from the control API" } }),
});
check(added.ok, "message added through the control API");
const next = await round(full.deltaLink);
check(next.items.length === 1 && next.items[0].subject === "Hello from the control API", "incremental round returns just the new message");

// The SDK's own request builder and page iterator, with delta by its full function name (as generated
// SDKs address it): `$select` through `.select()`, nextLinks followed and the deltaLink kept by PageIterator.
const first = await graph
  .api("/me/mailFolders('inbox')/messages/microsoft.graph.delta()")
  .select(["id", "subject"])
  .header("Prefer", "odata.maxpagesize=10")
  .get();
const seen = [];
const iterator = new PageIterator(graph, first, (m) => { seen.push(m); return true; }, {
  headers: { Prefer: "odata.maxpagesize=10" },
});
await iterator.iterate();
check(seen.length === full.items.length + 1, `request builder delta round (microsoft.graph.delta()): ${seen.length} messages`);
check(seen.every((m) => m.subject !== undefined && m.body === undefined), "$select from .select() travels in the delta tokens");
check(!!iterator.getDeltaLink(), "PageIterator ends on the deltaLink");
const fnForm = await graph.api("/me/mailFolders/inbox/messages/delta()").top(3).get();
check(Array.isArray(fnForm.value) && !!fnForm["@odata.nextLink"], "delta() form through the request builder");

// App-only Graph call with the client-credentials token.
const appGraph = Client.init({ authProvider: (done) => done(null, app.accessToken), baseUrl: `${base}/`, customHosts: new Set([hostname]) });
const users = await appGraph.api("/users").select("id,userPrincipalName").top(5).get();
check(users.value.length === 5 && !!users["@odata.nextLink"], "app-only /users page with nextLink");

console.log("PASS: MSAL Node + Microsoft Graph JS client completed auth code + PKCE, refresh, client credentials and a delta round against the emulator");
