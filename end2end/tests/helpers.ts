import { expect, Page } from "@playwright/test";

export const ADMIN = { email: "admin@northwind.test", password: "northwind-admin", name: "Adele Admin" };
export const MEMBER = { email: "alice@northwind.test", password: "northwind-member", name: "Alice Anders" };

/** Waits until the page has hydrated, so clicks go to Leptos and not to a plain form post. */
export async function hydrated(page: Page) {
  await expect(page.locator("body[data-hydrated='true']")).toHaveCount(1);
}

export async function signIn(page: Page, who: { email: string; password: string; name: string }) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("account-name")).toHaveText(who.name);
}

/** Fails the test on any console error or uncaught exception in the page. */
export function failOnConsoleErrors(page: Page) {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  return () => expect(errors, "console errors").toEqual([]);
}
