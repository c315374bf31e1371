import { expect, Page, test } from "@playwright/test";
import { DEMO_APP, failOnConsoleErrors, hydrated, newOrg, signIn, enabledOrg } from "./helpers";

async function openSettings(page: Page) {
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Office 365", exact: true })).toBeVisible();
}

function fieldError(page: Page, field: string) {
  return page.locator(`[data-error-for='${field}']`);
}

test("an admin enables Office 365: bad values are refused field by field and nothing typed is lost", async ({ page }) => {
  const noErrors = failOnConsoleErrors(page);
  const org = newOrg("Settings");
  await signIn(page, org.admin);
  // The feed points the admin at the settings page while the integration is not set up.
  await page.locator("[data-action='office365-setup']").getByRole("link").click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365$/);
  await hydrated(page);
  await expect(page.getByTestId("office365-status")).toHaveText("Not set up");
  await expect(page.getByTestId("poll-primary-warning")).toContainText(
    'Do NOT check "Poll primary integration only": checking this option will result in only the primary user\'s emails being synced.',
  );

  await page.getByText("Enable", { exact: true }).click();
  await page.getByTestId("own-app").check();
  await page.getByLabel("Directory (tenant) ID or domain").fill("not a tenant");
  await page.getByLabel("Application (client) ID").fill("1234");
  await page.getByLabel("Client secret", { exact: true }).fill(DEMO_APP.secret);
  await page.getByRole("button", { name: "Save settings" }).click();

  await expect(page.getByTestId("form-has-errors")).toBeVisible();
  await expect(fieldError(page, "tenant")).toContainText("Enter a directory (tenant) ID");
  await expect(fieldError(page, "client_id")).toContainText("An application (client) ID looks like");
  await expect(fieldError(page, "client_secret")).toHaveCount(0);
  // Everything typed is still there.
  await expect(page.getByLabel("Directory (tenant) ID or domain")).toHaveValue("not a tenant");
  await expect(page.getByLabel("Application (client) ID")).toHaveValue("1234");
  await expect(page.getByLabel("Client secret", { exact: true })).toHaveValue(DEMO_APP.secret);
  await expect(page.getByTestId("enable")).toBeChecked();

  // Right shapes but the wrong secret: Microsoft refuses the test token request.
  await page.getByLabel("Directory (tenant) ID or domain").fill(DEMO_APP.tenant);
  await page.getByLabel("Application (client) ID").fill(DEMO_APP.clientId);
  await page.getByLabel("Client secret", { exact: true }).fill("wrong-secret-value");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(fieldError(page, "client_secret")).toContainText("Microsoft rejected this client secret");
  await expect(fieldError(page, "tenant")).toHaveCount(0);
  await expect(page.getByLabel("Client secret", { exact: true })).toHaveValue("wrong-secret-value");

  // An expired secret is named as such.
  await page.getByLabel("Client secret", { exact: true }).fill(DEMO_APP.expiredSecret);
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(fieldError(page, "client_secret")).toContainText("This client secret has expired");

  // Nothing was stored by the refused attempts.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("office365-status")).toHaveText("Not set up");
  await expect(page.getByLabel("Directory (tenant) ID or domain")).toHaveValue("");

  await page.getByText("Enable", { exact: true }).click();
  await page.getByTestId("own-app").check();
  await page.getByLabel("Directory (tenant) ID or domain").fill(DEMO_APP.tenant);
  await page.getByLabel("Application (client) ID").fill(DEMO_APP.clientId);
  await page.getByLabel("Client secret", { exact: true }).fill(DEMO_APP.secret);
  await page.getByLabel("Client secret expires on").fill("2027-12-31");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toHaveText("Settings saved.");
  await expect(page.getByTestId("office365-status")).toHaveText("Enabled");
  // The secret is write-only: never sent back to the browser.
  await expect(page.getByLabel("Client secret", { exact: true })).toHaveValue("");
  await expect(page.getByLabel("Client secret", { exact: true })).toHaveAttribute("placeholder", /Stored/);
  expect(await page.content()).not.toContain(DEMO_APP.secret);
  await page.screenshot({ path: "../docs/screenshot-office365-settings.png", fullPage: true });

  await page.goto("/settings/integrations");
  await expect(page.locator("[data-integration='office365']").getByTestId("integration-status")).toHaveText("Enabled");
  noErrors();
});

test("checking Poll primary integration only asks for confirmation, leaves a banner and an audit entry", async ({ page }) => {
  const org = newOrg("Poll");
  await signIn(page, org.admin);
  await openSettings(page);
  await page.getByText("Enable", { exact: true }).click();
  await page.getByTestId("own-app").check();
  await page.getByLabel("Directory (tenant) ID or domain").fill(DEMO_APP.tenantId);
  await page.getByLabel("Application (client) ID").fill(DEMO_APP.clientId);
  await page.getByLabel("Client secret", { exact: true }).fill(DEMO_APP.secret);
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();
  await expect(page.getByTestId("poll-primary-banner")).toHaveCount(0);

  // Cancel leaves it unchecked.
  await page.getByTestId("poll-primary").check();
  const dialog = page.getByRole("alertdialog");
  // Nothing syncs yet: the confirmation says so rather than counting "0 connections".
  await expect(dialog).toContainText("No mailbox syncs yet;");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByTestId("poll-primary")).not.toBeChecked();
  await expect(dialog).toHaveCount(0);

  await page.getByTestId("poll-primary").check();
  await page.getByRole("alertdialog").getByRole("button", { name: "Yes, poll the primary integration only" }).click();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();
  await expect(page.getByTestId("poll-primary-banner")).toContainText("Poll primary integration only is on.");
  await page.reload();
  await expect(page.getByTestId("poll-primary-banner")).toBeVisible();
  await expect(page.getByTestId("poll-primary")).toBeChecked();

  await page.goto("/settings/audit");
  const log = page.getByTestId("audit-log");
  await expect(log.locator("[data-action='office365.poll_primary_on']")).toContainText(org.admin.email);
  await expect(log.locator("[data-action='office365.enabled']")).toBeVisible();
});

test("the permissions table comes from the same catalogue as the requested scope", async ({ page }) => {
  const org = newOrg("Perms");
  await signIn(page, org.admin);
  await page.goto("/settings/integrations/office365?tab=permissions");
  const table = page.getByTestId("permissions-table");
  await expect(table.getByRole("rowheader", { name: "READ-ONLY" })).toBeVisible();
  await expect(table.getByRole("rowheader", { name: "READ-WRITE" })).toBeVisible();
  // PRODUCT.md's twelve rows, then the application permissions service-account mode adds.
  await expect(table.locator("tr[data-permission]")).toHaveCount(20);
  await expect(table.locator("tr[data-kind='delegated']")).toHaveCount(11);
  await expect(table.locator("tr[data-permission='Calendars.Read']")).toContainText("Read calendars in all mailboxes");
  // Defaults: individual, read-only, everything synced: no application permission is requested.
  for (const row of await table.locator("tr[data-kind='application']").all()) {
    await expect(row.getByTestId("requested")).toHaveText("—");
  }
  const scope = await page.getByTestId("requested-scope").innerText();
  for (const row of await table.locator("tr[data-kind='delegated']").all()) {
    const name = await row.getAttribute("data-permission");
    const requested = (await row.getByTestId("requested").innerText()) === "Yes";
    expect(scope.split(" ").includes(name!), `${name} requested=${requested} scope=${scope}`).toBe(requested);
  }
  expect(scope).toBe(
    "openid profile email offline_access User.Read Mail.Read.Shared Calendars.Read.Shared Contacts.Read Tasks.Read",
  );
});

test("a member cannot open the Office 365 settings or save them", async ({ page, request }) => {
  const org = newOrg("Guard", ["Mia"]);
  await signIn(page, org.members[0]);
  const res = await page.goto("/settings/integrations/office365");
  expect(res?.status()).toBe(403);
  await expect(page.getByTestId("ask-your-admin")).toBeVisible();
  // Calling the server function directly, with the member's session, changes nothing.
  const direct = await page.request.post("/api/save_office365_settings", {
    form: { "form[enabled]": "true", "form[tenant]": "evil.test" },
    headers: { accept: "application/json" },
  });
  expect(direct.status()).toBe(403);
  expect((await direct.json()).code).toBe("forbidden");
});

test("admins are warned before the client secret lapses, on the settings page and in the feed", async ({ page }) => {
  await enabledOrg(page, "Expiry");
  const soon = new Date(Date.now() + 10 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  await expect(page.getByTestId("secret-expiry-banner")).toHaveCount(0);
  await page.getByLabel("Client secret expires on").fill(soon);
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();
  await page.reload();
  await expect(page.getByTestId("secret-expiry-banner")).toContainText(`The client secret expires on ${soon}, in 10 days.`);
  await page.goto("/");
  const card = page.locator("[data-action='office365-secret-expiry']");
  await expect(card).toContainText("Renew the Office 365 client secret");
  await card.getByRole("link", { name: "Open Connection Settings" }).click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365$/);
});
