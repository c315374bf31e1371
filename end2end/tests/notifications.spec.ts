import { APIRequestContext, expect, Page, test } from "@playwright/test";
import { DEMO_APP, enabledOrg, failOnConsoleErrors, hydrated, microsoftSignIn, signIn } from "./helpers";

const LIVE = "Live (change notifications)";

// Other tests expect Carol never to have consented: take her consent back afterwards.
test.afterEach(async ({ request }) => {
  await request.delete(`${process.env.I360_E2E_EMULATOR_ORIGIN}/_emulator/tenants/${DEMO_APP.tenantId}/admin-consent`, {
    data: { client_id: DEMO_APP.clientId, user: "carol@northwind.test" },
  });
});

/** Microsoft's sign-in, then its consent page when it shows one (a user who consented before gets none). */
async function signInAndAccept(page: Page, email: string, back: RegExp) {
  await microsoftSignIn(page, email);
  const accept = page.locator("#accept");
  await Promise.race([page.waitForURL(back), accept.waitFor()]);
  if (await accept.isVisible()) await accept.click();
  await expect(page).toHaveURL(back);
  await hydrated(page);
}

/** The server's count of accepted change notifications, from /metrics. */
async function notificationsReceived(request: APIRequestContext): Promise<number> {
  const text = await (await request.get("/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith("change_notifications_received_total "));
  expect(line, "/metrics counts change notifications").toBeTruthy();
  return Number(line!.split(" ")[1]);
}

/** Reloads `path` until its change delivery reads Live (the first full sync is done and subscribed). */
async function waitUntilLive(page: Page, path: string) {
  await expect(async () => {
    await page.goto(path);
    await expect(page.getByTestId("change-delivery-label").first()).toHaveText(LIVE, { timeout: 500 });
  }).toPass({ timeout: 60_000 });
}

test("with change notifications, a mail sent to a connected member shows on Activity within seconds, the sync interval an hour", async ({
  page,
  browser,
  request,
}) => {
  test.setTimeout(180_000);
  const emulator = process.env.I360_E2E_EMULATOR_ORIGIN!;
  const org = await enabledOrg(page, "Live", ["Lena"]);

  // An hour between polls: only a change notification can bring a new mail in seconds.
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await page.locator("#sync_interval_minutes").selectOption("60");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();
  await page.reload();
  await hydrated(page);
  await expect(page.locator("#sync_interval_minutes")).toHaveValue("60");
  // This server can get change notifications (the emulator delivers to loopback): no "off" line.
  await expect(page.getByTestId("change-delivery-note")).toHaveCount(0);

  // The admin's own connection: My Connection says how its mailbox learns of changes.
  await page.goto("/settings/integrations/office365/my-connection");
  await hydrated(page);
  await page.getByRole("button", { name: "Activate" }).click();
  await signInAndAccept(page, "admin@northwind.test", /\/settings\/integrations\/office365\/my-connection$/);
  await waitUntilLive(page, "/settings/integrations/office365/my-connection");
  await expect(page.getByTestId("change-delivery-why")).toHaveCount(0);
  await page.screenshot({ path: "../docs/screenshot-change-delivery.png", fullPage: true });

  // A member connects; once her first sync is done her mailbox is live too.
  const member = await (await browser.newContext()).newPage();
  const check = failOnConsoleErrors(member);
  await signIn(member, org.members[0]);
  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await signInAndAccept(member, "carol@northwind.test", /\/profile$/);
  await waitUntilLive(member, "/profile");
  await expect(member.getByTestId("change-delivery-why")).toHaveCount(0);
  await expect(member.getByTestId("last-sync")).not.toHaveText("Not synced yet");

  // Team connections says the same for her row.
  await page.goto("/settings/integrations/office365/team");
  await expect(
    page.getByTestId("team-connections").locator(`tr[data-owner='${org.members[0].email}']`).getByTestId("change-delivery-label"),
  ).toHaveText(LIVE);

  // A mail arrives in her inbox at Microsoft: the next poll is an hour away, so it is the change
  // notification that brings it onto Activity within seconds.
  const before = await notificationsReceived(request);
  const subject = `Change notification check ${Date.now().toString(36)}`;
  const added = await request.post(`${emulator}/_emulator/mailboxes/carol@northwind.test/messages`, {
    data: { fields: { subject } },
  });
  expect(added.ok(), await added.text()).toBeTruthy();
  const sent = Date.now();
  const search = `/activity?kind=mail&q=${encodeURIComponent(subject)}`;
  await expect(async () => {
    await member.goto(search);
    await expect(member.getByTestId("activity-items").locator(".activity-item__title").first()).toHaveText(subject, { timeout: 500 });
  }).toPass({ timeout: 10_000, intervals: [250, 500, 1000] });
  const seconds = (Date.now() - sent) / 1000;
  console.log(`the new mail showed on Activity ${seconds.toFixed(1)} s after it arrived at Microsoft`);
  expect(seconds).toBeLessThan(10);
  expect(await notificationsReceived(request), "Microsoft's change notification was accepted").toBeGreaterThan(before);
  check();
});
