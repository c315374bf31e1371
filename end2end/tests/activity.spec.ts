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
  if (await consent.isVisible().catch(() => false)) await consent.click();
  await expect(member).toHaveURL(/\/profile$/);

  // The sync runs in the server's own workers; the page shows what has arrived.
  await expect(async () => {
    await member.goto("/activity?kind=mail");
    await expect(member.getByTestId("activity-items").locator("li[data-kind='mail']").first()).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  for (const kind of ["events", "contacts", "tasks"]) {
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
