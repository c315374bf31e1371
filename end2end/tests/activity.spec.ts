import { expect, test } from "@playwright/test";
import { DEMO_APP, enabledOrg, failOnConsoleErrors, hydrated, microsoftSignIn, signIn } from "./helpers";

// Other tests expect Carol never to have consented: take her consent back afterwards.
test.afterEach(async ({ request }) => {
  await request.delete(`${process.env.I360_E2E_EMULATOR_ORIGIN}/_emulator/tenants/${DEMO_APP.tenantId}/admin-consent`, {
    data: { client_id: DEMO_APP.clientId, user: "carol@northwind.test" },
  });
});

test("after connecting, a member's synced mail, events, contacts and tasks appear on Activity, searchable", async ({ page, browser }) => {
  const org = await enabledOrg(page, "Activity", ["Ava"]);
  const member = await (await browser.newContext()).newPage();
  const check = failOnConsoleErrors(member);
  await signIn(member, org.members[0]);
  await member.goto("/activity");
  await expect(member.getByTestId("activity-empty")).toContainText("Nothing synced yet");

  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "carol@northwind.test");
  const consent = member.locator("#accept");
  await consent.click();
  await expect(member).toHaveURL(/\/profile$/);

  // The sync runs in the server's own workers; the page shows what has arrived.
  await expect(async () => {
    await member.goto("/activity?kind=mail");
    await expect(member.getByTestId("activity-items").locator("li[data-kind='mail']").first()).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  for (const kind of ["calendar", "contacts", "tasks"]) {
    await member.goto(`/activity?kind=${kind}`);
    await expect(member.getByTestId("activity-items").locator(`li[data-kind='${kind}']`).first()).toBeVisible();
  }
  await member.goto("/activity");
  await expect(member.getByTestId("activity-items").locator("li")).toHaveCount(25);
  await member.getByTestId("older").click();
  await expect(member).toHaveURL(/page=1/);
  await expect(member.getByTestId("activity-items").locator("li").first()).toBeVisible();

  // Searching by the words of the newest item finds it.
  await member.goto("/activity?kind=contacts");
  const title = (await member.getByTestId("activity-items").locator(".activity-item__title").first().innerText()).trim();
  await member.getByLabel("Search").fill(title);
  await member.getByRole("button", { name: "Search" }).click();
  await expect(member).toHaveURL(/q=/);
  await expect(member.getByTestId("activity-items").locator(".activity-item__title").first()).toHaveText(title);
  await member.getByLabel("Search").fill("no such words anywhere 4711");
  await member.getByRole("button", { name: "Search" }).click();
  await expect(member.getByTestId("activity-empty")).toContainText("Nothing matches");

  // The profile says how the sync is doing; the admin can look at the member's activity.
  await member.goto("/profile");
  await expect(member.getByTestId("last-sync")).not.toHaveText("Not synced yet", { timeout: 15_000 });
  await member.goto("/activity");
  await member.screenshot({ path: "../docs/screenshot-activity.png", fullPage: false });
  await page.goto("/activity");
  await page.getByLabel("Whose activity").selectOption({ label: org.members[0].name });
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page.getByTestId("activity-viewing")).toHaveText(org.members[0].name);
  await expect(page.getByTestId("activity-items").locator("li").first()).toBeVisible();
  await page.goto("/settings/integrations/office365/team");
  await expect(page.getByTestId("team-sync").first()).toContainText("Mail");
  check();
});

test("a revoked refresh token turns the connection to needs attention with a Reconnect card; reconnecting resumes the sync", async ({
  page,
  browser,
  request,
}) => {
  const emulator = process.env.I360_E2E_EMULATOR_ORIGIN!;
  const org = await enabledOrg(page, "Revoke", ["Rex"]);
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "carol@northwind.test");
  const consent = member.locator("#accept");
  await consent.click();
  await expect(member).toHaveURL(/\/profile$/);
  await expect(async () => {
    await member.reload();
    await expect(member.getByTestId("last-sync")).not.toHaveText("Not synced yet", { timeout: 500 });
  }).toPass({ timeout: 30_000 });

  // Microsoft revokes the grant (a password reset, say) and the current access token stops working.
  await request.post(`${emulator}/_emulator/users/carol@northwind.test/revoke-refresh-tokens`);
  await request.post(`${emulator}/_emulator/tokens/expire-access`);
  await page.goto("/settings/integrations/office365/team");
  await hydrated(page);
  await page.getByTestId("team-connections").locator(`tr[data-owner='${org.members[0].email}']`).getByRole("button", { name: "Sync now" }).click();

  const card = member.locator("[data-action='office365-reconnect']");
  await expect(async () => {
    await member.goto("/");
    await expect(card).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await expect(card).toContainText("Reconnect Office 365");
  await expect(card).toContainText("revoked");
  await member.goto("/profile");
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Needs attention");
  await member.screenshot({ path: "../docs/screenshot-needs-attention.png", fullPage: false });

  // Reconnecting from the card resumes the sync from its saved cursors.
  await member.goto("/");
  await card.getByRole("button", { name: "Reconnect" }).click();
  await microsoftSignIn(member, "carol@northwind.test");
  // Carol consented before (the revocation was of her tokens, not her consent): no consent page.
  await expect(member).toHaveURL(/\/profile$/);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Connected");
  await expect(async () => {
    await member.reload();
    await expect(member.getByTestId("sync-state")).toHaveText("Up to date", { timeout: 500 });
  }).toPass({ timeout: 30_000 });
  await member.goto("/");
  await expect(card).toHaveCount(0);
});

test("during a first sync, Activity shows a progress bar per resource until it completes", async ({ page, browser, request }) => {
  test.setTimeout(120_000);
  const emulator = process.env.I360_E2E_EMULATOR_ORIGIN!;
  // A slow mailbox: every Graph request for it takes 1.5 s (the first full sync of a big mailbox).
  await request.post(`${emulator}/_emulator/faults`, {
    data: { mailbox: "carol@northwind.test", route: "delta", delay_ms: 1500, count: 12 },
  });
  const org = await enabledOrg(page, "Progress", ["Pia"]);
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "carol@northwind.test");
  const consent = member.locator("#accept");
  await consent.click();
  await expect(member).toHaveURL(/\/profile$/);

  const progress = member.getByTestId("sync-progress");
  await expect(async () => {
    await member.goto("/activity");
    await expect(progress).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 30_000 });
  const mail = progress.locator("[data-resource='Mail'] progress");
  await expect(mail).toHaveAttribute("max", "60");
  await expect(progress).toContainText(/Mail: \d+ of 60/);
  // Resources Microsoft gives no total for count up under an indeterminate bar.
  await expect(progress.locator("[data-resource='Events']")).toContainText(/Events: \d+ so far/);
  await member.screenshot({ path: "../docs/screenshot-first-sync.png", fullPage: false });

  // When the first sync is done the bar gives way to the items.
  await expect(async () => {
    await member.reload();
    await expect(progress).toHaveCount(0, { timeout: 500 });
    await expect(member.getByTestId("activity-items")).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 90_000 });
});
