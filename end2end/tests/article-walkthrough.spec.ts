import { expect, test } from "@playwright/test";
import { activateThroughMicrosoft, failOnConsoleErrors, hydrated, microsoftSignIn, newOrg, signIn } from "./helpers";

// The help article, step by step, as a new customer meets it on a `make run`-style server: the
// server runs with its own multi-tenant app registration, so nobody types one.
test("the help article's setup: enable, activate through Microsoft, a member connects, another tenant is refused", async ({ page, browser }) => {
  const noErrors = failOnConsoleErrors(page);
  const org = newOrg("Article", ["Ava", "Ben"]);
  await signIn(page, org.admin);

  // Steps 1-3: the Actions feed's Office 365 action opens Connection Settings.
  await page.locator("[data-action='office365-setup']").getByRole("link").click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365$/);
  await hydrated(page);
  await expect(page.getByTestId("deployment-app")).toContainText("there is nothing to enter");
  await expect(page.getByTestId("own-app-fields")).toBeHidden();
  await expect(page.getByLabel("Directory (tenant) ID or domain")).toBeHidden();

  // Step 4: Enable, and save. No app registration.
  await page.getByText("Enable", { exact: true }).click();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toHaveText("Settings saved.");
  await expect(page.getByTestId("office365-status")).toHaveText("Enabled");
  await page.screenshot({ path: "../docs/screenshot-connection-settings.png", fullPage: true });

  // Step 5: My Connection > Activate: Microsoft's own sign-in and consent pages.
  await page.getByRole("link", { name: "My Connection" }).click();
  await hydrated(page);
  // The deployment's app learns the tenant: the admin signs in through `organizations`.
  const authorize = page.waitForURL(/\/organizations\/oauth2\/v2\.0\/authorize/);
  const activated = activateThroughMicrosoft(page, "admin@northwind.test");
  await authorize;
  await activated;
  await expect(page.getByTestId("my-connection-state")).toHaveText("Active");
  await expect(page.getByTestId("ms-account")).toContainText("admin@northwind.test");

  // The tenant is pinned now, and Connection Settings says which.
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await expect(page.getByTestId("pinned-tenant")).toContainText("4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f");

  // A member connects through the pinned tenant.
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  await member.locator("[data-action='office365-user-setup']").getByRole("button", { name: "Connect Office 365" }).click();
  await expect(member).toHaveURL(/\/4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f\/oauth2\/v2\.0\/authorize/);
  await microsoftSignIn(member, "alice@northwind.test");
  await member.locator("#accept").click();
  await expect(member).toHaveURL(/\/profile$/);
  await hydrated(member);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Connected");

  // Another member signs in at Microsoft with an account of another tenant: refused, nothing stored.
  const outsider = await (await browser.newContext()).newPage();
  await signIn(outsider, org.members[1]);
  await outsider.locator("[data-action='office365-user-setup']").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(outsider, "erin@fabrikam.test");
  await expect(outsider.getByTestId("connect-result")).toContainText("belongs to a different organization");
  await outsider.goto("/profile");
  await hydrated(outsider);
  await expect(outsider.getByTestId("profile-connection-state")).toHaveText("Not connected");
  noErrors();
});
