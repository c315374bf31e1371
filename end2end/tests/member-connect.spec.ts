import { expect, test } from "@playwright/test";
import { enabledOrg, hydrated, microsoftSignIn, signIn } from "./helpers";

test("a member sees the setup card when the admin switched it on, and connects from it", async ({ page, browser }) => {
  const org = await enabledOrg(page, "Card", ["Mia"]);
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  const card = member.locator("[data-action='office365-user-setup']");
  await expect(card).toContainText("Set up Office365 User Integration");
  await card.getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "alice@northwind.test");
  await member.locator("#accept").click();
  await expect(member).toHaveURL(/\/profile$/);
  await hydrated(member);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Connected");
  await expect(member.getByTestId("profile-ms-account")).toHaveText("alice@northwind.test");
  // Connected: the card is gone.
  await member.goto("/");
  await expect(member.getByTestId("actions-empty")).toBeVisible();

  // The admin's Connection Settings now count one mailbox that polling the primary would pause.
  await page.goto("/settings/integrations/office365");
  await hydrated(page);
  await page.getByTestId("poll-primary").check();
  await expect(page.getByRole("alertdialog")).toContainText(`1 mailbox will stop syncing: ${org.members[0].name} (alice@northwind.test).`);

  // Disconnect deletes it and brings the prompt back.
  await member.goto("/profile");
  await hydrated(member);
  await member.getByRole("button", { name: "Disconnect" }).click();
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Not connected");
  await expect(member.getByTestId("profile-connect")).toBeVisible();
});

test("with the setup action off, a member has no card but connects from the profile prompt", async ({ page, browser }) => {
  const org = await enabledOrg(page, "Prompt", ["Noor"], false);
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  await expect(member.getByTestId("actions-empty")).toBeVisible();
  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, "bob@northwind.test");
  await member.locator("#accept").click();
  await expect(member).toHaveURL(/\/profile$/);
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Connected");
  await expect(member.getByTestId("profile-ms-account")).toHaveText("bob@northwind.test");

  // The admin sees it under Team connections and can disconnect it.
  await page.goto("/settings/integrations/office365/team");
  await hydrated(page);
  const row = page.getByTestId("team-connections").locator(`tr[data-owner='${org.members[0].email}']`);
  await expect(row).toContainText("bob@northwind.test");
  await expect(row.getByTestId("team-state")).toHaveText("Active");
  await row.getByRole("button", { name: "Disconnect" }).click();
  await expect(page.getByTestId("team-empty")).toBeVisible();
  await member.reload();
  await expect(member.getByTestId("profile-connection-state")).toHaveText("Not connected");
  await page.goto("/settings/audit");
  await expect(page.getByTestId("audit-log").locator("[data-action='office365.disconnected']")).toContainText("bob@northwind.test");
});
