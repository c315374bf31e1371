import AxeBuilder from "@axe-core/playwright";
import { Browser, expect, Page, test } from "@playwright/test";
import { enabledOrg, revokeConsent, failOnConsoleErrors, hydrated, microsoftSignIn, signIn } from "./helpers";

const MS_MEMBER = "bob@northwind.test";

// Other tests expect Bob never to have consented to the demo app.
test.beforeEach(async ({ request }) => revokeConsent(request, MS_MEMBER));
test.afterEach(async ({ request }) => revokeConsent(request, MS_MEMBER));

/** The member connects their own account as Bob and lands on their profile, connected. */
async function memberConnects(browser: Browser, who: { email: string; password: string; name: string }) {
  const member = await (await browser.newContext()).newPage();
  await signIn(member, who);
  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, MS_MEMBER);
  await member.locator("#accept").click();
  await expect(member).toHaveURL(/\/profile$/);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Connected");
  return member;
}

function modeRadio(page: Page, value: string) {
  return page.locator(`input[name="form[mode]"][value="${value}"]`);
}

test("switching to a service account names whose own syncs stop, and adds them as service account users in the same step", async ({
  page,
  browser,
}) => {
  const org = await enabledOrg(page, "Switch", ["Mia"]);
  const member = await memberConnects(browser, org.members[0]);
  const noErrors = failOnConsoleErrors(page);
  await page.goto("/settings/integrations/office365");
  await hydrated(page);

  // The poll-primary confirmation counts mailboxes and names them.
  await page.getByTestId("poll-primary").check();
  await expect(page.getByTestId("poll-primary-confirm")).toContainText(
    `1 mailbox will stop syncing: ${org.members[0].name} (${MS_MEMBER}).`,
  );
  await page.getByTestId("poll-primary-confirm").getByRole("button", { name: "Cancel" }).click();

  // Choosing a service account asks first, listing the member, with focus in the question.
  await modeRadio(page, "application").check();
  const dialog = page.getByTestId("mode-switch-confirm");
  await expect(dialog).toHaveAttribute("role", "alertdialog");
  await expect(dialog).toContainText("1 member's own connection will stop syncing.");
  await expect(dialog.getByTestId("mode-switch-stops").locator("li")).toHaveText([`${org.members[0].name} (${MS_MEMBER})`]);
  await expect(dialog.getByRole("button", { name: "Switch to a service account" })).toBeFocused();
  const { violations } = await new AxeBuilder({ page }).analyze();
  expect(violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id)).toEqual([]);
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toHaveCount(0);
  await expect(modeRadio(page, "individual")).toBeChecked();
  await expect(modeRadio(page, "individual")).toBeFocused();

  // Saving the switch without answering is refused by the server, and nothing changes.
  await modeRadio(page, "application").check();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("form-has-errors")).toBeVisible();
  await expect(page.locator("[data-error-for='mode']")).toContainText(MS_MEMBER);
  await expect(page.locator("fieldset").filter({ has: modeRadio(page, "individual") })).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByTestId("office365-status")).toHaveText("Enabled");

  // Confirmed, with "Also add them as service account users" (on by default).
  await expect(dialog.getByRole("checkbox", { name: "Also add them as service account users" })).toBeChecked();
  await dialog.getByRole("button", { name: "Switch to a service account" }).click();
  await expect(modeRadio(page, "application")).toBeFocused();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();
  await expect(page.getByTestId("office365-status")).toHaveText("Enabled as service account");
  await page.goto("/settings/integrations/office365/service-accounts");
  await hydrated(page);
  await expect(page.getByTestId("service-accounts").locator(`tr[data-address='${MS_MEMBER}']`)).toContainText(org.members[0].name);

  // The member's profile no longer says a green "Connected": their mailbox syncs another way.
  await member.reload();
  await hydrated(member);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Not in use");
  await expect(member.getByTestId("profile-connection-state")).not.toHaveClass(/badge--good/);
  await expect(member.getByTestId("profile-sync-note")).toContainText("through the service account your admins maintain");
  noErrors();
});

test("a member whose sync a service account stopped is told so on their profile, not shown Connected", async ({ page, browser }) => {
  const org = await enabledOrg(page, "Stranded", ["Noor"]);
  const member = await memberConnects(browser, org.members[0]);
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await modeRadio(page, "service_user").check();
  const dialog = page.getByTestId("mode-switch-confirm");
  await dialog.getByRole("checkbox", { name: "Also add them as service account users" }).uncheck();
  await dialog.getByRole("button", { name: "Switch to a service account" }).click();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();

  await member.reload();
  await hydrated(member);
  const state = member.getByTestId("profile-connection-state");
  await expect(state).toHaveText("Paused");
  await expect(state).toHaveClass(/badge--warn/);
  await expect(member.getByTestId("profile-sync-note")).toContainText("Ask your admin to add you as a service account user.");
  await expect(member.getByTestId("sync-state")).toContainText("Paused");
});
