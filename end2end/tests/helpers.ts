import { APIRequestContext, expect, Page } from "@playwright/test";

export const ADMIN = { email: "admin@northwind.test", password: "northwind-admin", name: "Adele Admin" };
export const MEMBER = { email: "alice@northwind.test", password: "northwind-member", name: "Alice Anders" };

/**
 * Waits until the page, and every part of it rendered inside a Suspense, has hydrated, so clicks go
 * to Leptos and not to a plain form post.
 */
export async function hydrated(page: Page) {
  await expect(page.locator("body[data-hydrated='true']")).toHaveCount(1);
  await expect(page.locator("[data-ready-marker]").first()).toBeAttached();
  await expect(page.locator("[data-ready-marker]:not([data-ready='true'])")).toHaveCount(0);
}

export async function signIn(page: Page, who: { email: string; password: string; name: string }) {
  page.on("console", (m) => {
    if (m.type() === "error") console.log(`[browser error on ${page.url()}] ${m.text().slice(0, 600)}`);
  });
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
    // Only our own pages count: Microsoft's (the emulator's) are not ours to judge.
    const emulator = process.env.I360_E2E_EMULATOR_ORIGIN ?? "";
    const where = m.location().url || page.url();
    if (m.type() === "error" && !(emulator && (where.startsWith(emulator) || page.url().startsWith(emulator)))) {
      errors.push(m.text());
    }
  });
  page.on("pageerror", (e) => errors.push(e.message));
  return () => expect(errors, "console errors").toEqual([]);
}

let orgCounter = 0;

/**
 * A fresh organization with one admin (and optionally members), made with the operator CLI so the
 * test does not depend on what other tests did to the demo organization.
 */
export function newOrg(label: string, members: string[] = []) {
  const { execFileSync } = require("node:child_process") as typeof import("node:child_process");
  const id = `${Date.now().toString(36)}${(orgCounter++).toString(36)}`;
  const name = `${label} ${id}`;
  const domain = `${label.toLowerCase().replace(/[^a-z0-9]+/g, "")}-${id}.test`;
  const password = "e2e-password-1";
  const env = {
    ...process.env,
    DATABASE_URL: process.env.I360_E2E_DATABASE_URL,
    I360_KEY_FILE: process.env.I360_E2E_KEY_FILE,
    I360_USER_PASSWORD: password,
  };
  const bin = process.env.I360_SERVER_BIN!;
  execFileSync(bin, ["org", "create", "--name", name], { env });
  const admin = { email: `admin@${domain}`, password, name: `Admin ${id}` };
  execFileSync(bin, ["user", "create", "--org", name, "--email", admin.email, "--name", admin.name, "--role", "admin"], { env });
  const people = members.map((m) => {
    const who = { email: `${m.toLowerCase()}@${domain}`, password, name: `${m} ${id}` };
    execFileSync(bin, ["user", "create", "--org", name, "--email", who.email, "--name", who.name, "--role", "member"], { env });
    return who;
  });
  return { name, admin, members: people };
}

/** The demo Microsoft 365 tenant's app registration, served by the emulator. */
export const DEMO_APP = {
  tenant: "northwind.test",
  tenantId: "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f",
  clientId: "11111111-2222-4333-8444-555555555555",
  secret: "demo-client-secret",
  expiredSecret: "demo-expired-secret",
};

/** Fabrikam's own app registration; Fabrikam's users may not consent to apps themselves. */
export const FABRIKAM_APP = {
  tenant: "fabrikam.test",
  tenantId: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
  clientId: "33333333-4444-4555-8666-777777777777",
  secret: "demo-client-secret",
  expiredSecret: "demo-expired-secret",
};

const MS_PASSWORD = "m365-demo";

/** An organization whose admin has enabled Office 365 with the demo tenant's app registration. */
export async function enabledOrg(
  page: Page,
  label: string,
  members: string[] = [],
  setupAction = true,
  app = DEMO_APP,
  mode: "individual" | "application" | "service_user" = "individual",
) {
  const org = newOrg(label, members);
  await signIn(page, org.admin);
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await page.getByText("Enable", { exact: true }).click();
  await page.getByTestId("own-app").check();
  await page.getByLabel("Directory (tenant) ID or domain").fill(app.tenant);
  await page.getByLabel("Application (client) ID").fill(app.clientId);
  await page.getByLabel("Client secret", { exact: true }).fill(app.secret);
  if (!setupAction) await page.getByText('Show members the "Set up Office365 User Integration" action').click();
  if (mode !== "individual") await page.locator(`input[name="form[mode]"][value="${mode}"]`).check();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByTestId("saved")).toBeVisible();
  return org;
}

/** Microsoft's (the emulator's) sign-in page. */
export async function microsoftSignIn(page: Page, email: string) {
  await expect(page.locator("#email")).toBeVisible();
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(MS_PASSWORD);
  await page.locator("#signin").click();
}


/** Forgets, in the emulator, a user's own consent to an app (or, without a user, the tenant-wide grant). */
export async function revokeConsent(request: APIRequestContext, user?: string, app = DEMO_APP) {
  await request.delete(`${process.env.I360_E2E_EMULATOR_ORIGIN}/_emulator/tenants/${app.tenantId}/admin-consent`, {
    data: user ? { client_id: app.clientId, user } : { client_id: app.clientId },
  });
}

/** My Connection > Activate, then Microsoft's sign-in and consent page (its wording checked) as `email`. */
export async function activateThroughMicrosoft(page: Page, email: string) {
  await page.getByRole("button", { name: "Activate" }).click();
  await expect(page).toHaveURL(/\/oauth2\/v2\.0\/authorize/);
  await microsoftSignIn(page, email);
  // Microsoft's consent page lists what Intelligence360 asks for, in Microsoft's wording.
  await expect(page.getByRole("heading", { name: "Permissions requested" })).toBeVisible();
  await expect(page.locator("#permissions")).toContainText("Read your contacts");
  await page.locator("#accept").click();
  await expect(page).toHaveURL(/\/settings\/integrations\/office365\/my-connection$/);
  await hydrated(page);
}
