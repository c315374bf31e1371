import { expect, test } from "@playwright/test";
import { enabledOrg, hydrated } from "./helpers";

test("after Enable, the admin's Actions feed asks them to activate their connection (the help article's step 5)", async ({ page }) => {
  await enabledOrg(page, "StepFive");
  await page.goto("/");
  const card = page.locator("[data-action='office365-activate']");
  await expect(card.getByRole("heading")).toHaveText("Activate your connection");
  await card.getByRole("link", { name: "Open My Connection" }).click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365\/my-connection$/);
  await hydrated(page);
  await expect(page.getByTestId("my-connection-state")).toHaveText("Not active");
  await expect(page.getByRole("button", { name: "Activate" })).toBeVisible();
});
