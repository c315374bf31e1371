import { APIRequestContext, expect, Page, test } from "@playwright/test";
import { DEMO_APP, enabledOrg, failOnConsoleErrors, hydrated, microsoftSignIn, revokeConsent, signIn } from "./helpers";

const emulator = () => process.env.I360_E2E_EMULATOR_ORIGIN!;

// Other tests expect these Microsoft accounts never to have consented: take their consent back.
test.afterEach(async ({ request }) => {
  for (const user of ["alice@northwind.test", "bob@northwind.test", "carol@northwind.test"]) {
    await revokeConsent(request, user);
  }
});

/** Switches the organization's access level on Connection Settings (as its admin) and saves. */
async function setAccess(admin: Page, level: "Read-write" | "Read-only") {
  await admin.goto("/settings/integrations/office365");
  await hydrated(admin);
  await admin.getByText(level, { exact: true }).click();
  await admin.getByRole("button", { name: "Save settings" }).click();
  await expect(admin.getByTestId("saved")).toBeVisible();
}

/** A member of `org` signs in, connects as `account` at Microsoft (consenting), and waits for a first sync. */
async function connectMember(page: Page, who: { email: string; password: string; name: string }, account: string) {
  await signIn(page, who);
  await page.goto("/profile");
  await hydrated(page);
  await page.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(page, account);
  await page.locator("#accept").click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("last-sync")).not.toHaveText("Not synced yet", { timeout: 500 });
  }).toPass({ timeout: 30_000 });
}

/** The emulator's view of a mailbox folder (immutable ids: the ids Activity's rows carry). */
async function folder(request: APIRequestContext, user: string, kind: string, container: string): Promise<any[]> {
  const res = await request.get(`${emulator()}/_emulator/mailboxes/${user}/${kind}?container=${container}&full=true&immutable=true`);
  expect(res.ok()).toBeTruthy();
  return (await res.json()).result;
}

/** Waits until Activity (searched for `text`, of `kind`) shows a synced row, pressing the admin's Sync now for `owner` while it does not. */
async function syncedRow(page: Page, kind: string, text: string, admin?: Page, owner?: string) {
  const row = page.getByTestId("activity-items").locator(`li[data-kind='${kind}']`, { hasText: text });
  await expect(async () => {
    if (admin && owner) {
      await admin.goto("/settings/integrations/office365/team");
      await hydrated(admin);
      await admin.getByTestId("team-connections").locator(`tr[data-owner='${owner}']`).getByRole("button", { name: "Sync now" }).click();
    }
    await page.goto(`/activity?kind=${kind}&q=${encodeURIComponent(text)}`);
    await hydrated(page);
    await expect(row.first()).toBeVisible({ timeout: 2_000 });
  }).toPass({ timeout: 45_000 });
  return row;
}

test("a member of a read-write organization emails a colleague, gets a reply, books a meeting and completes a task", async ({
  page,
  browser,
  request,
}) => {
  test.setTimeout(240_000);
  const org = await enabledOrg(page, "Writes", ["Wanda", "Wes"]);
  await setAccess(page, "Read-write");
  const [wanda, wes] = org.members;
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  const check = failOnConsoleErrors(alice);
  await connectMember(alice, wanda, "alice@northwind.test");
  await connectMember(bob, wes, "bob@northwind.test");

  // Read-write, granted: Activity offers the writes.
  await alice.goto("/activity");
  await hydrated(alice);
  const bar = alice.getByTestId("write-bar");
  for (const label of ["New email", "New event", "New contact", "New task"]) {
    await expect(bar.getByRole("button", { name: label })).toBeVisible();
  }

  // A new email: the composer takes focus, a bad address is refused in words and nothing typed is lost.
  const subject = `Quarterly numbers ${Date.now().toString(36)}`;
  await bar.getByRole("button", { name: "New email" }).click();
  const composer = alice.getByTestId("composer");
  await expect(composer.getByRole("heading", { name: "New email" })).toBeVisible();
  await expect(composer.getByLabel("To", { exact: true })).toBeFocused();
  await composer.getByLabel("To", { exact: true }).fill("bob@northwind");
  await composer.getByLabel("Subject").fill(subject);
  await composer.getByLabel("Message").fill("Hi Bob,\nthe numbers are in.\nAlice");
  await composer.getByTestId("compose-submit").click();
  await expect(composer.getByTestId("write-error")).toContainText("is not an email address");
  await expect(composer.getByLabel("Subject")).toHaveValue(subject);
  await composer.getByLabel("To", { exact: true }).fill("bob@northwind.test");
  await expect(composer.getByTestId("write-error")).toHaveCount(0);
  await alice.screenshot({ path: "../docs/screenshot-compose.png", fullPage: false });
  // Microsoft takes its time over this send, so the row stays "Sending…" for a while.
  await request.post(`${emulator()}/_emulator/faults`, {
    data: { mailbox: "alice@northwind.test", route: "/send", method: "POST", delay_ms: 4000, count: 1 },
  });
  // A double click is one write: the composer's key is the same for both.
  await composer.getByTestId("compose-submit").dblclick();
  await expect(composer).toHaveCount(0);
  const pending = alice.getByTestId("pending-writes").locator("li[data-write-kind='send_mail']", { hasText: subject });
  await expect(pending).toHaveCount(1);
  await expect(pending.getByTestId("write-state")).toHaveText("Sending…");
  await alice.evaluate(() => window.getSelection()?.removeAllRanges());
  await alice.screenshot({ path: "../docs/screenshot-write-pending.png", fullPage: false });
  // The page follows it until the synced item from her Sent Items replaces the row: one row, never two.
  await expect(pending).toHaveCount(0, { timeout: 30_000 });
  const sent = (await folder(request, "alice@northwind.test", "message", "sentitems")).filter((m) => m.subject === subject);
  expect(sent, "sent once").toHaveLength(1);
  const mine = await syncedRow(alice, "mail", subject);
  await expect(mine).toHaveCount(1);
  await expect(mine).toHaveAttribute("data-id", sent[0].id);

  // It is in Bob's inbox at Microsoft, and on his Activity after his sync.
  const delivered = (await folder(request, "bob@northwind.test", "message", "inbox")).filter((m) => m.subject === subject);
  expect(delivered, "delivered once").toHaveLength(1);
  const received = await syncedRow(bob, "mail", subject, page, wes.email);
  await expect(received).toHaveAttribute("data-id", delivered[0].id);
  await expect(received).toContainText("alice@northwind.test");
  await received.scrollIntoViewIfNeeded();
  await bob.screenshot({ path: "../docs/screenshot-write-received.png", fullPage: false });

  // Bob replies; the reply reaches Alice's inbox.
  await received.getByRole("button", { name: "Reply", exact: true }).click();
  const reply = bob.getByTestId("composer");
  await expect(reply.getByLabel("Subject")).toHaveValue(`Re: ${subject}`);
  await reply.getByLabel("Message").fill("Thanks, Alice. Looks good.");
  await reply.getByTestId("compose-submit").click();
  await expect(reply).toHaveCount(0);
  await expect(async () => {
    const inbox = await folder(request, "alice@northwind.test", "message", "inbox");
    expect(inbox.filter((m) => m.subject === `Re: ${subject}`)).toHaveLength(1);
  }).toPass({ timeout: 30_000 });
  await syncedRow(alice, "mail", `Re: ${subject}`, page, wanda.email);

  // Alice books a meeting with Bob; it is on her calendar and Bob is invited.
  const meeting = `Numbers review ${Date.now().toString(36)}`;
  await alice.goto("/activity");
  await hydrated(alice);
  await alice.getByTestId("write-bar").getByRole("button", { name: "New event" }).click();
  const event = alice.getByTestId("composer");
  await expect(event.getByLabel("Time zone")).not.toHaveValue("");
  await event.getByLabel("Subject").fill(meeting);
  await event.getByLabel("Location").fill("Room 4");
  const day = new Date(Date.now() + 2 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  await event.getByLabel("Starts").fill(`${day}T10:00`);
  await event.getByLabel("Ends").fill(`${day}T09:00`);
  await event.getByLabel("Attendees").fill("bob@northwind.test");
  await event.getByTestId("compose-submit").click();
  await expect(event.getByTestId("write-error")).toHaveText("The event must end after it starts.");
  await event.getByLabel("Ends").fill(`${day}T11:00`);
  await event.getByTestId("compose-submit").click();
  // Recorded (the composer closes); its row, pending or synced, follows.
  await expect(event).toHaveCount(0);
  const booked = await syncedRow(alice, "calendar", meeting);
  await expect(booked).toHaveCount(1);
  // She organizes it, so she may cancel it.
  await expect(booked.getByRole("button", { name: "Cancel" })).toBeVisible();
  await expect(async () => {
    const res = await request.get(
      `${emulator()}/_emulator/mailboxes/bob@northwind.test/calendar-view?start=${day}T00:00:00Z&end=${day}T23:59:59Z`,
    );
    const events: any[] = (await res.json()).result;
    expect(events.filter((e) => e.subject === meeting)).toHaveLength(1);
  }).toPass({ timeout: 15_000 });

  // A task: created, then completed from its row.
  const title = `Call Contoso back ${Date.now().toString(36)}`;
  await alice.goto("/activity");
  await hydrated(alice);
  // Escape closes a composer and gives focus back to the button that opened it.
  const newTask = alice.getByTestId("write-bar").getByRole("button", { name: "New task" });
  await newTask.click();
  await expect(alice.getByTestId("composer").getByLabel("Title")).toBeFocused();
  await alice.keyboard.press("Escape");
  await expect(alice.getByTestId("composer")).toHaveCount(0);
  await expect(newTask).toBeFocused();
  await newTask.press("Enter");
  const task = alice.getByTestId("composer");
  await task.getByLabel("Title").fill(title);
  await task.getByLabel("Due date (optional)").fill(day);
  await task.getByTestId("compose-submit").click();
  await expect(task).toHaveCount(0);
  const created = await syncedRow(alice, "tasks", title);
  await expect(created).toHaveCount(1);
  await created.getByRole("button", { name: "Complete" }).click();
  // Recorded: its row shows (or the synced task already has); the page itself follows it until
  // the task comes back completed from Microsoft, with no reload.
  const completing = alice.getByTestId("pending-writes").locator("li[data-write-kind='complete_task']");
  await expect(completing.or(created.getByRole("button", { name: "Reopen" }))).toBeVisible();
  await expect(alice.getByTestId("quick-error")).toHaveCount(0);
  await expect(created.getByRole("button", { name: "Reopen" })).toBeVisible({ timeout: 30_000 });
  await expect(completing).toHaveCount(0);
  await expect(created).toContainText("completed");

  // A contact: created, then edited.
  const surname = `Tanaka ${Date.now().toString(36)}`;
  await alice.goto("/activity");
  await hydrated(alice);
  await alice.getByTestId("write-bar").getByRole("button", { name: "New contact" }).click();
  const contact = alice.getByTestId("composer");
  await contact.getByLabel("First name").fill("Yuki");
  await contact.getByLabel("Last name").fill(surname);
  await contact.getByLabel("Email").fill("yuki.tanaka@contoso.test");
  await contact.getByLabel("Company").fill("Contoso");
  await contact.getByTestId("compose-submit").click();
  await expect(contact).toHaveCount(0);
  const person = await syncedRow(alice, "contacts", surname);
  await expect(person).toContainText("yuki.tanaka@contoso.test");
  await person.getByRole("button", { name: "Edit" }).click();
  const edit = alice.getByTestId("composer");
  await expect(edit.getByRole("heading", { name: "Edit contact" })).toBeVisible();
  await expect(edit.getByLabel("Last name")).toHaveValue(surname);
  await expect(edit.getByLabel("Email")).toHaveValue("yuki.tanaka@contoso.test");
  await edit.getByLabel("Job title").fill("Buyer");
  await edit.getByTestId("compose-submit").click();
  await expect(edit).toHaveCount(0);
  await expect(async () => {
    await alice.goto(`/activity?kind=contacts&q=${encodeURIComponent(surname)}`);
    await expect(person).toContainText("Buyer", { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(person).toHaveCount(1);

  // Alice cancels the meeting: it leaves her calendar, and Bob's copy says it is cancelled.
  await alice.goto(`/activity?kind=calendar&q=${encodeURIComponent(meeting)}`);
  await hydrated(alice);
  await booked.getByRole("button", { name: "Cancel" }).click();
  const cancel = alice.getByTestId("composer");
  await expect(cancel.getByRole("heading", { name: "Cancel event" })).toBeVisible();
  await cancel.getByLabel("Message to attendees (optional)").fill("Moved to next week.");
  await cancel.getByTestId("compose-submit").click();
  await expect(cancel).toHaveCount(0);
  await expect(async () => {
    await alice.goto(`/activity?kind=calendar&q=${encodeURIComponent(meeting)}`);
    await expect(alice.getByTestId("activity-empty")).toBeVisible({ timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(async () => {
    const res = await request.get(
      `${emulator()}/_emulator/mailboxes/bob@northwind.test/calendar-view?start=${day}T00:00:00Z&end=${day}T23:59:59Z`,
    );
    const events: any[] = (await res.json()).result;
    expect(events.filter((e) => e.subject === `Canceled: ${meeting}` && e.isCancelled)).toHaveLength(1);
  }).toPass({ timeout: 15_000 });

  // Microsoft refuses a send: the row stays, says it failed, why, and who must act.
  await request.post(`${emulator()}/_emulator/faults`, {
    data: { mailbox: "alice@northwind.test", route: "/send", method: "POST", status: 400, count: 1 },
  });
  const refusedSubject = `Refused ${Date.now().toString(36)}`;
  await alice.goto("/activity");
  await hydrated(alice);
  await alice.getByTestId("write-bar").getByRole("button", { name: "New email" }).click();
  const again = alice.getByTestId("composer");
  await again.getByLabel("To", { exact: true }).fill("bob@northwind.test");
  await again.getByLabel("Subject").fill(refusedSubject);
  await again.getByTestId("compose-submit").click();
  await expect(again).toHaveCount(0);
  const failed = alice.getByTestId("pending-writes").locator("li[data-state='failed']", { hasText: refusedSubject });
  await expect(failed).toBeVisible({ timeout: 30_000 });
  await expect(failed.getByTestId("write-state")).toHaveText("Email not sent");
  await expect(failed.getByTestId("write-failure")).toContainText(/\(.+\)$/);
  await alice.screenshot({ path: "../docs/screenshot-write-failed.png", fullPage: false });
  check();
});

test("in a read-only organization nothing is offered, and the server function refuses a write with 403 and writes nothing", async ({
  page,
  browser,
  request,
}) => {
  test.setTimeout(120_000);
  const org = await enabledOrg(page, "ReadOnly", ["Rita"]);
  const member = await (await browser.newContext()).newPage();
  await connectMember(member, org.members[0], "carol@northwind.test");
  await member.goto("/activity");
  await hydrated(member);
  await expect(member.getByTestId("activity-items").locator("li").first()).toBeVisible();
  await expect(member.getByTestId("write-bar")).toHaveCount(0);
  await expect(member.getByTestId("write-hint")).toHaveText("The organization's Office 365 access is read-only, so nothing can be written.");
  for (const label of ["Reply", "Reply all", "Forward", "Cancel", "Edit", "Complete", "Reopen"]) {
    await expect(member.getByRole("button", { name: label, exact: true })).toHaveCount(0);
  }

  // Whatever the browser sends: 403 with the reason, nothing recorded, nothing sent.
  const subject = `Not sent ${Date.now().toString(36)}`;
  const write = { SendMail: { to: ["bob@northwind.test"], cc: [], bcc: [], subject, body: "Hello", html: false } };
  const res = await member.request.post("/api/record_write", {
    headers: { "sec-fetch-site": "same-origin", accept: "application/json" },
    form: { key: "e2e-read-only-write-1", request: JSON.stringify(write) },
  });
  expect(res.status()).toBe(403);
  expect((await res.json()).message).toContain("read-only");
  const mine = await member.request.post("/api/load_my_writes", { headers: { "sec-fetch-site": "same-origin" }, form: {} });
  expect(await mine.json()).toEqual([]);
  const sent = await folder(request, "carol@northwind.test", "message", "sentitems");
  expect(sent.filter((m) => m.subject === subject)).toHaveLength(0);
  const drafts = await folder(request, "carol@northwind.test", "message", "drafts");
  expect(drafts.filter((m) => m.subject === subject)).toHaveLength(0);
});
