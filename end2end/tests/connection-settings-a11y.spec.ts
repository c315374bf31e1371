import AxeBuilder from "@axe-core/playwright";
import { expect, Page, test, TestInfo } from "@playwright/test";
import * as fs from "node:fs";
import { enabledOrg, failOnConsoleErrors, hydrated, newOrg, signIn } from "./helpers";

/** Axe's findings of serious or critical impact; the others are listed in the test's output. */
async function seriousViolations(page: Page, where: string) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  for (const v of violations) {
    console.log(`[axe ${where}] ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  }
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help}`);
}

/** docs/screenshots/ when the repository has it, else this test's output directory. */
function screenshotPath(testInfo: TestInfo, name: string) {
  return fs.existsSync("../docs/screenshots") ? `../docs/screenshots/${name}` : testInfo.outputPath(name);
}

test("a refused save puts its summary above the fields, focused, and ties every error to its field", async ({ page }, testInfo) => {
  const noErrors = failOnConsoleErrors(page);
  const org = newOrg("A11y");
  await signIn(page, org.admin);
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await page.getByText("Enable", { exact: true }).click();
  for (const what of ["Mail", "Calendar events", "Contacts", "To Do tasks"]) {
    await page.getByRole("checkbox", { name: what, exact: true }).uncheck();
  }
  // A value the list does not offer (a stale or tampered form) is refused on its field.
  await page.getByLabel("Sync interval").evaluate((select: HTMLSelectElement) => {
    select.add(new Option("Every 7 minutes", "7"));
    select.value = "7";
  });
  await page.getByRole("button", { name: "Save settings" }).click();

  // The summary is the first thing in the form, and focus goes there.
  const summary = page.getByTestId("form-summary");
  await expect(summary.getByTestId("form-has-errors")).toHaveText("Nothing was saved. Fix the fields marked below and save again.");
  await expect(summary).toBeFocused();
  const summaryBox = (await summary.boundingBox())!;
  const firstSection = (await page.locator(".settings-form section").first().boundingBox())!;
  expect(summaryBox.y + summaryBox.height).toBeLessThanOrEqual(firstSection.y);

  // Every error describes its control, which is marked invalid; fieldsets included.
  const shown = page.locator("[data-error-for]");
  await expect(page.locator("[data-error-for='features']")).toContainText("Choose at least one thing to sync.");
  for (const error of await shown.all()) {
    const id = await error.getAttribute("id");
    const control = page.locator(`[aria-describedby~='${id}']`);
    await expect(control, `the control described by #${id}`).toHaveCount(1);
    await expect(control).toHaveAttribute("aria-invalid", "true");
  }
  await expect(page.getByLabel("Sync interval")).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Sync interval")).toHaveAccessibleDescription("Choose one of the listed sync intervals.");
  const resources = page.locator("fieldset").filter({ has: page.getByRole("checkbox", { name: "Mail", exact: true }) });
  await expect(resources).toHaveAttribute("aria-invalid", "true");
  await expect(resources).toHaveAttribute("aria-describedby", "features-error");
  // Nothing marked invalid without an error shown.
  await expect(page.locator("[aria-invalid='true']")).toHaveCount(await shown.count());

  expect(await seriousViolations(page, "Connection Settings with errors")).toEqual([]);
  const shot = screenshotPath(testInfo, "connection-settings-errors.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);

  // Fixed: the errors and their ties go away.
  await page.getByRole("checkbox", { name: "Mail", exact: true }).check();
  await page.getByLabel("Sync interval").selectOption("15");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.locator("[data-error-for='features']")).toHaveCount(0);
  await expect(resources).not.toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Sync interval")).not.toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Sync interval")).not.toHaveAttribute("aria-describedby");
  noErrors();
});

test("the poll-primary confirmation takes focus when it opens and gives it back when it closes", async ({ page }) => {
  const noErrors = failOnConsoleErrors(page);
  await enabledOrg(page, "Focus");
  const poll = page.getByTestId("poll-primary");
  await poll.focus();
  await page.keyboard.press("Space");
  const dialog = page.getByRole("alertdialog");
  await expect(dialog).toContainText("No mailbox syncs yet;");
  await expect(dialog.getByRole("button", { name: "Yes, poll the primary integration only" })).toBeFocused();
  // Keyboard only: Tab to Cancel and press it.
  await page.keyboard.press("Tab");
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(dialog).toHaveCount(0);
  await expect(poll).toBeFocused();
  await expect(poll).not.toBeChecked();

  await page.keyboard.press("Space");
  await expect(dialog.getByRole("button", { name: "Yes, poll the primary integration only" })).toBeFocused();
  expect(await seriousViolations(page, "poll-primary confirmation")).toEqual([]);
  await page.keyboard.press("Enter");
  await expect(dialog).toHaveCount(0);
  await expect(poll).toBeFocused();
  await expect(poll).toBeChecked();
  noErrors();
});
