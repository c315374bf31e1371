import { APIRequestContext, expect, Page, test } from "@playwright/test";
import { DEMO_APP, enabledOrg, failOnConsoleErrors, hydrated, microsoftSignIn, signIn } from "./helpers";

/** Removes Northwind's tenant-wide grant, so other tests see the consent page they expect. */
async function revokeNorthwindGrant(request: APIRequestContext) {
  const emulator = process.env.I360_E2E_EMULATOR_ORIGIN!;
  await request.delete(`${emulator}/_emulator/tenants/${DEMO_APP.tenantId}/admin-consent`, {
    data: { client_id: DEMO_APP.clientId },
  });
}

function row(page: Page, address: string) {
  return page.getByTestId("service-accounts").locator(`tr[data-address='${address}']`);
}

test.afterEach(async ({ request }) => revokeNorthwindGrant(request));

test("service account with application permissions: admin consent, users from the directory, and no prompts for members", async ({
  page,
  browser,
  request,
}) => {
  await revokeNorthwindGrant(request);
  const org = await enabledOrg(page, "AppPerms", ["Sid"], true, DEMO_APP, "application");
  const check = failOnConsoleErrors(page);

  // Members are never asked to connect: no card, and the profile says why.
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  await expect(member.getByTestId("actions-empty")).toBeVisible();
  await member.goto("/profile");
  await expect(member.getByText("connects to Office 365 through a service account")).toBeVisible();
  await expect(member.getByText("If you cannot see your data, contact your admin.")).toBeVisible();
  await expect(member.getByTestId("profile-connect")).toHaveCount(0);

  // Until an administrator consents, the integration needs attention, and the admin is asked for
  // organization-wide consent, which activates the service connection.
  await page.goto("/settings/integrations");
  await expect(page.locator("[data-integration='office365'] [data-testid='integration-status']")).toHaveText("Needs attention");
  await page.goto("/");
  await expect(page.locator("[data-action='office365-admin-consent']")).toContainText("application permissions");
  await page.goto("/settings/integrations/office365/my-connection");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Service connection (application permissions)" })).toBeVisible();
  await page.getByRole("button", { name: "Activate" }).click();
  await microsoftSignIn(page, "admin@northwind.test");
  await expect(page.getByText("Accept for your organization")).toBeVisible();
  await page.locator("#accept").click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365\/my-connection$/);
  await hydrated(page);
  await expect(page.getByTestId("my-connection-state")).toHaveText("Active");
  await expect(page.getByTestId("ms-account")).toContainText(`Application permissions (client ID ${DEMO_APP.clientId})`);
  await expect(page.getByTestId("granted-table").locator("tr[data-permission='Mail.Read'] [data-testid='granted']")).toHaveText("Granted");
  await page.goto("/");
  await expect(page.locator("[data-action='office365-admin-consent']")).toHaveCount(0);
  await page.goto("/settings/integrations");
  await expect(page.locator("[data-integration='office365'] [data-testid='integration-status']")).toHaveText(
    "Enabled as service account",
  );

  // Service account users come from the Microsoft directory, or by address.
  await page.goto("/settings/integrations/office365/service-accounts");
  await hydrated(page);
  await page.getByLabel("Search the Microsoft directory").fill("bo");
  await page.getByRole("button", { name: "Search" }).click();
  const found = page.getByTestId("directory-results").locator("li[data-address='bob@northwind.test']");
  await expect(found).toContainText("Bob Burke");
  await found.getByRole("button", { name: "Add" }).click();
  await expect(row(page, "bob@northwind.test").getByTestId("mailbox-health")).toHaveText("Mailbox reachable");
  await page.getByLabel("Or add by email address").fill("dave@northwind.test");
  await page.getByTestId("add-by-address").getByRole("button", { name: "Add" }).click();
  await expect(row(page, "dave@northwind.test").getByTestId("mailbox-health")).toHaveText("No mailbox (licence missing)");
  await page.getByLabel("Or add by email address").fill("not an address");
  await page.getByTestId("add-by-address").getByRole("button", { name: "Add" }).click();
  await expect(page.getByTestId("add-error")).toContainText("Enter the person's Microsoft 365 email address");
  await expect(page.getByLabel("Or add by email address")).toHaveValue("not an address");
  await page.screenshot({ path: "../docs/screenshot-service-accounts.png", fullPage: true });

  await row(page, "dave@northwind.test").getByRole("button", { name: "Remove" }).click();
  await expect(row(page, "dave@northwind.test")).toHaveCount(0);
  await page.goto("/settings/audit");
  const log = page.getByTestId("audit-log");
  await expect(log.locator("[data-action='office365.service_activated']")).toHaveCount(1);
  await expect(log.locator("[data-action='office365.service_user_removed']")).toContainText("dave@northwind.test");
  check();
});

test("service account with a service user: a mailbox it cannot open shows no access", async ({ page, request }) => {
  test.setTimeout(60_000);
  await revokeNorthwindGrant(request);
  await enabledOrg(page, "ServiceUser", [], true, DEMO_APP, "service_user");
  const check = failOnConsoleErrors(page);

  // People added before activation wait to be checked.
  await page.goto("/settings/integrations/office365/service-accounts");
  await hydrated(page);
  await expect(page.getByTestId("service-not-activated")).toBeVisible();
  for (const address of ["alice@northwind.test", "carol@northwind.test"]) {
    await page.getByLabel("Or add by email address").fill(address);
    await page.getByTestId("add-by-address").getByRole("button", { name: "Add" }).click();
    await expect(row(page, address).getByTestId("mailbox-health")).toHaveText("Not checked yet");
  }

  // The service user signs in once; its delegate access decides each row. Opening each mailbox
  // takes Microsoft 6 s here: the activation does not wait for it, the page shows the checks.
  await request.post(`${process.env.I360_E2E_EMULATOR_ORIGIN}/_emulator/faults`, {
    data: { route: "mailFolders/inbox", delay_ms: 6000, count: 2 },
  });
  await page.goto("/settings/integrations/office365/my-connection");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Service connection (service user)" })).toBeVisible();
  await page.getByRole("button", { name: "Activate" }).click();
  await microsoftSignIn(page, "service@northwind.test");
  await page.locator("#accept").click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365\/my-connection$/);
  await expect(page.getByTestId("ms-account")).toContainText("service@northwind.test");
  await expect(page.getByTestId("my-connection-state")).toHaveText("Active");

  await page.goto("/settings/integrations/office365/service-accounts");
  await hydrated(page);
  await expect(row(page, "alice@northwind.test").getByTestId("mailbox-health")).toHaveText("Checking…");
  await expect(page.getByTestId("checking-note")).toHaveText(/Checking 2 mailboxes/);
  await page.screenshot({ path: "../docs/screenshot-service-accounts-checking.png", fullPage: true });
  // The page reads the list again while checks run: each result replaces its "Checking…".
  await expect(row(page, "alice@northwind.test").getByTestId("mailbox-health")).toHaveText("Mailbox reachable", { timeout: 20_000 });
  await expect(row(page, "carol@northwind.test").getByTestId("mailbox-health")).toHaveText("No access to this mailbox");
  await expect(page.getByTestId("checking-note")).toHaveCount(0);
  // A delegated service user may not search the directory: the page says so and offers the address.
  await page.getByLabel("Search the Microsoft directory").fill("ca");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByTestId("search-error")).toContainText("Add people by their email address instead.");
  check();
});
