import { expect, test } from "@playwright/test";
import { ADMIN, MEMBER, failOnConsoleErrors, hydrated, signIn } from "./helpers";

test("a visitor is sent to the sign-in page", async ({ page }) => {
  await page.goto("/settings/integrations");
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
});

test("an admin signs in and reaches Settings > All Integrations", async ({ page }) => {
  const noErrors = failOnConsoleErrors(page);
  await signIn(page, ADMIN);
  await expect(page.getByRole("heading", { name: "Actions" })).toBeVisible();
  // Admins are asked to set up Office 365 while it is not set up.
  await expect(page.locator("[data-action='office365-setup']")).toContainText("Set up the Office 365 integration");
  await page.screenshot({ path: "../docs/screenshot-actions.png", fullPage: true });

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await expect(page.getByRole("heading", { name: "All Integrations" })).toBeVisible();
  const office365 = page.locator("[data-integration='office365']");
  await expect(office365.getByRole("heading")).toHaveText("Office 365");
  await expect(office365.getByTestId("integration-status")).toHaveText("Not set up");
  await page.screenshot({ path: "../docs/screenshot-integrations.png", fullPage: true });
  noErrors();
});

test("a member has no Settings link and is told to ask an admin", async ({ page }) => {
  await signIn(page, MEMBER);
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Actions" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Settings" })).toHaveCount(0);
  await expect(page.getByTestId("actions-empty")).toContainText("You're all caught up");

  const response = await page.goto("/settings/integrations");
  expect(response?.status()).toBe(403);
  await expect(page.getByTestId("ask-your-admin")).toContainText("This page is for admins");
  await expect(page.getByTestId("integrations")).toHaveCount(0);
});

test("a wrong password shows an error and keeps the email typed", async ({ page }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill("bob@northwind.test");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("login-error")).toHaveText("That email and password do not match an account.");
  await expect(page.getByLabel("Email")).toHaveValue("bob@northwind.test");
  await expect(page).toHaveURL(/\/login$/);
});

test("signing out ends the session", async ({ page, context }) => {
  await signIn(page, MEMBER);
  const before = (await context.cookies()).find((c) => c.name === "i360_session");
  expect(before?.httpOnly).toBe(true);
  expect(before?.sameSite).toBe("Lax");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  expect((await context.cookies()).find((c) => c.name === "i360_session")).toBeUndefined();

  // The old cookie no longer works even if someone kept a copy.
  await context.addCookies([{ ...before!, expires: -1 }]);
  await page.goto("/profile");
  await expect(page).toHaveURL(/\/login$/);
});

test("profile shows the account and where Office 365 stands", async ({ page }) => {
  await signIn(page, MEMBER);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Profile" }).click();
  await expect(page.getByTestId("profile-email")).toHaveText(MEMBER.email);
  await expect(page.getByTestId("profile-office365")).toContainText("If you cannot see it, contact your admin.");
});
