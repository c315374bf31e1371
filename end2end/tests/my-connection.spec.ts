import { expect, Page, test } from "@playwright/test";
import { activateThroughMicrosoft, enabledOrg, failOnConsoleErrors, hydrated, microsoftSignIn } from "./helpers";

test("an admin activates My Connection through Microsoft's sign-in and consent and sees it Active", async ({ page }) => {
  const noErrors = failOnConsoleErrors(page);
  await enabledOrg(page, "Activate");
  await page.getByRole("link", { name: "My Connection" }).click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365\/my-connection$/);
  await hydrated(page);
  await expect(page.getByTestId("my-connection-state")).toHaveText("Not active");

  const callbacks: string[] = [];
  page.on("request", (r) => {
    if (r.url().includes("/oauth/office365/callback")) callbacks.push(r.url());
  });
  await activateThroughMicrosoft(page, "admin@northwind.test");
  await expect(page.getByTestId("my-connection-state")).toHaveText("Active");
  await expect(page.getByTestId("ms-account")).toContainText("admin@northwind.test");
  await expect(page.getByTestId("my-connection")).toContainText("Primary integration");
  const granted = page.getByTestId("granted-table");
  for (const name of ["Mail.Read.Shared", "Calendars.Read.Shared", "Contacts.Read", "Tasks.Read"]) {
    await expect(granted.locator(`tr[data-permission='${name}']`).getByTestId("granted")).toHaveText("Granted");
  }
  await expect(page.getByTestId("missing-permissions")).toHaveCount(0);
  await page.screenshot({ path: "../docs/screenshot-my-connection.png", fullPage: true });

  // Replaying the callback (the code and state are single use) ends on a page that explains it.
  expect(callbacks.length).toBe(1);
  await page.goto(callbacks[0]);
  await expect(page.getByTestId("connect-result")).toContainText("This sign-in link has expired or was already used");

  await page.goto("/settings/audit");
  await expect(page.getByTestId("audit-log").locator("[data-action='office365.activated']")).toContainText("admin@northwind.test");
  // Deactivate deletes the connection.
  await page.goto("/settings/integrations/office365/my-connection");
  await hydrated(page);
  await page.getByRole("button", { name: "Deactivate" }).click();
  await expect(page.getByTestId("my-connection-state")).toHaveText("Not active");
  noErrors();
});

test("a tampered, foreign or declined callback ends on a page that says what happened, never a 500", async ({ page }) => {
  await enabledOrg(page, "Tamper");
  // A state nobody issued.
  let res = await page.goto("/oauth/office365/callback?code=stolen-code&state=forged-state");
  expect(res?.status()).toBeLessThan(500);
  await expect(page.getByTestId("connect-result")).toContainText("This sign-in link has expired or was already used");
  // No state at all, with an error from "Microsoft".
  res = await page.goto("/oauth/office365/callback?error=access_denied&error_description=AADSTS65004%3a+declined");
  expect(res?.status()).toBeLessThan(500);
  await expect(page.getByTestId("connect-result")).toContainText("could not be verified");

  // The person declines on Microsoft's consent page: error=access_denied with the real state.
  await page.goto("/settings/integrations/office365/my-connection");
  await page.getByRole("button", { name: "Activate" }).click();
  // Someone who has not consented before, so Microsoft shows the consent page.
  await microsoftSignIn(page, "carol@northwind.test");
  await page.locator("#cancel").click();
  await expect(page).toHaveURL(/\/connect\/result\?reason=consent_declined/);
  await expect(page.getByTestId("what-happened")).toContainText("The permissions were not accepted");
  await expect(page.getByTestId("next-step")).toContainText("start again and choose Accept");
  await expect(page.getByTestId("microsoft-code")).toContainText("AADSTS");

  // A Microsoft account from another organization than the one configured.
  await page.goto("/settings/integrations/office365/my-connection");
  await page.getByRole("button", { name: "Activate" }).click();
  await microsoftSignIn(page, "erin@fabrikam.test");
  await expect(page).toHaveURL(/\/connect\/result\?reason=wrong_tenant/);
  await expect(page.getByTestId("what-happened")).toContainText("belongs to a different organization");
});
