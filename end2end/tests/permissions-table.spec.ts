import AxeBuilder from "@axe-core/playwright";
import { expect, test } from "@playwright/test";
import { enabledOrg, revokeConsent, failOnConsoleErrors, hydrated, microsoftSignIn, signIn } from "./helpers";

const MS_MEMBER = "bob@northwind.test";

// Other tests expect Bob never to have consented to the demo app.
test.beforeEach(async ({ request }) => revokeConsent(request, MS_MEMBER));
test.afterEach(async ({ request }) => revokeConsent(request, MS_MEMBER));

/** Text as people read it: Microsoft's strings may hold no-break spaces. */
const words = (s: string) => s.replace(/\s+/g, " ").trim();

test("beside each delegated permission the table shows the words members see on Microsoft's consent page", async ({ page, browser }) => {
  const org = await enabledOrg(page, "Wording", ["Mia"]);
  const noErrors = failOnConsoleErrors(page);
  await page.goto("/settings/integrations/office365?tab=permissions");
  await hydrated(page);
  const table = page.getByTestId("permissions-table");
  await expect(table.getByRole("columnheader", { name: "What members see" })).toBeVisible();
  const requested: string[] = [];
  for (const row of await table.locator("tr[data-kind='delegated']").all()) {
    const said = words(await row.getByTestId("user-dialogue").innerText());
    expect(said, `${await row.getAttribute("data-permission")}`).not.toBe("");
    expect(said).not.toContain("only an admin consents");
    if ((await row.getByTestId("requested").innerText()) === "Yes") requested.push(said);
  }
  for (const row of await table.locator("tr[data-kind='application']").all()) {
    await expect(row.getByTestId("user-dialogue")).toHaveText("None: only an admin consents");
  }
  expect(requested.length).toBe(4);
  const { violations } = await new AxeBuilder({ page }).analyze();
  for (const v of violations) console.log(`[axe Permissions] ${v.impact} ${v.id}: ${v.help}`);
  expect(violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id)).toEqual([]);
  noErrors();

  // A member connecting is asked, on Microsoft's page, in exactly those words.
  const member = await (await browser.newContext()).newPage();
  await signIn(member, org.members[0]);
  await member.goto("/profile");
  await hydrated(member);
  await member.getByTestId("profile-connect").getByRole("button", { name: "Connect Office 365" }).click();
  await microsoftSignIn(member, MS_MEMBER);
  await expect(member.getByRole("heading", { name: "Permissions requested" })).toBeVisible();
  const asked = (await member.locator(".perm-title").allInnerTexts()).map(words);
  for (const said of requested) expect(asked, "the consent page's titles").toContain(said);
});

test("Graph permission names wrap only at their dots, never inside a word", async ({ page }) => {
  await enabledOrg(page, "Wrap");
  await page.setViewportSize({ width: 400, height: 900 });
  await page.goto("/settings/integrations/office365?tab=permissions");
  await hydrated(page);
  const names = page.getByTestId("permissions-table").locator("td code");
  await expect(names).toHaveCount(20);
  await expect(page.locator("tr[data-permission='Calendars.ReadWrite.Shared'] code")).toHaveText("Calendars.ReadWrite.Shared");
  // Break points after the dots, so a name can still wrap rather than widen the page.
  const wraps = await page.locator("tr[data-permission='Calendars.ReadWrite.Shared'] code").evaluate((c) => c.querySelectorAll("wbr").length);
  expect(wraps).toBe(2);
  // Each part between dots is laid out on one line: a word broken in two has boxes on two lines.
  const brokenWords = (stripBreaks: boolean) =>
    names.evaluateAll(
      (codes, stripBreaks) =>
        codes.flatMap((code) => {
          // Without the markup's break points the stylesheet alone must keep words whole.
          if (stripBreaks) code.textContent = code.textContent;
          const broken: string[] = [];
          const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            let start = 0;
            for (const part of (node.textContent ?? "").split(/(?<=\.)/)) {
              const range = document.createRange();
              range.setStart(node, start);
              range.setEnd(node, start + part.length);
              start += part.length;
              const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
              if (lines.size > 1) broken.push(`${code.textContent}: "${part}" spans ${lines.size} lines`);
            }
          }
          return broken;
        }),
      stripBreaks,
    );
  expect(await brokenWords(false)).toEqual([]);
  expect(await brokenWords(true)).toEqual([]);
});
