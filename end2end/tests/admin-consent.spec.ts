import { expect, test } from "@playwright/test";
import { FABRIKAM_APP, enabledOrg, failOnConsoleErrors, hydrated, microsoftSignIn, signIn } from "./helpers";

test("where users may not consent, a refused member's admin grants organization-wide consent and the member then connects", async ({
  page,
  browser,
  request,
}) => {
  // Whatever an earlier run left in the emulator: Fabrikam starts without a tenant-wide grant.
  const emulator = process.env.I360_E2E_EMULATOR_ORIGIN!;
  await request.delete(`${emulator}/_emulator/tenants/${FABRIKAM_APP.tenantId}/admin-consent`, {
    data: { client_id: FABRIKAM_APP.clientId },
  });
  const org = await enabledOrg(page, "Fabrikam", ["Erin"], true, FABRIKAM_APP);
  const checkAdmin = failOnConsoleErrors(page);

  // The member tries, and Microsoft says only an admin can approve the app.
  const member = await (await browser.newContext()).newPage();
  const checkMember = failOnConsoleErrors(member);
  await signIn(member, org.members[0]);
  await member.locator("[data-action='office365-user-setup']").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "erin@fabrikam.test");
  await expect(member.locator("h1")).toHaveText("Need admin approval");
  await member.locator("#return-to-app").click();
  await expect(member).toHaveURL(/\/connect\/result\?reason=admin_approval_required/);
  await expect(member.getByTestId("connect-result")).toContainText("Your admins have been asked to grant consent for everyone.");
  await expect(member.getByTestId("connect-result")).toContainText("AADSTS90094");
  await member.screenshot({ path: "../docs/screenshot-admin-approval-required.png", fullPage: true });

  // The admin's feed has the card; it runs Microsoft's admin consent.
  await page.goto("/");
  await hydrated(page);
  const card = page.locator("[data-action='office365-admin-consent']");
  await expect(card).toContainText("Grant organization-wide consent");
  await expect(card).toContainText(org.members[0].name);
  await card.getByRole("button", { name: "Grant consent" }).click();
  // Least privilege: the admin signs in with exactly the settings' permissions and consents on behalf
  // of the organization on Microsoft's consent page (never `.default`).
  await expect(page).toHaveURL(/prompt=consent/);
  expect(new URL(page.url()).searchParams.get("scope")).not.toContain(".default");
  await microsoftSignIn(page, "admin@fabrikam.test");
  await expect(page.locator("#permissions")).toContainText("Read your contacts");
  await page.locator("#consent-org").check();
  await page.locator("#accept").click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365\/admin-consent$/);
  await hydrated(page);
  await expect(page.getByTestId("consent-status")).toHaveText("Granted for the organization");
  await expect(page.getByTestId("consent-grant")).toContainText(FABRIKAM_APP.tenantId);
  await expect(page.getByTestId("consent-grant")).toContainText(org.admin.email);
  await page.screenshot({ path: "../docs/screenshot-admin-consent.png", fullPage: true });
  await page.goto("/");
  await expect(page.locator("[data-action='office365-admin-consent']")).toHaveCount(0);

  // The member connects without a consent page.
  await member.goto("/");
  await member.locator("[data-action='office365-user-setup']").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "erin@fabrikam.test");
  await expect(member).toHaveURL(/\/profile$/);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Connected");
  await expect(member.getByTestId("profile-ms-account")).toHaveText("erin@fabrikam.test");

  await page.goto("/settings/audit");
  const log = page.getByTestId("audit-log");
  await expect(log.locator("[data-action='office365.admin_approval_requested']")).toHaveCount(1);
  await expect(log.locator("[data-action='office365.admin_consent_granted']")).toContainText(FABRIKAM_APP.tenantId);
  checkAdmin();
  checkMember();
});
