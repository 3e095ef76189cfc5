// The console in a real browser: Debian's chromium, driven by playwright-core, against a real
// `sov serve` (started by crates/sov-cli/tests/console.rs, which passes what it set up in the
// environment). Signs in, chats with a specialist and sees its citations, opens the seal and
// the audit record, checks escaping, labels, keyboard order and the phone layout, signs out and
// finds the session refused. Screenshots of each page go to SOV_CONSOLE_SHOTS.
//
// Prints one JSON line with what it checked; exits non-zero with the first failure.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("SOV_CONSOLE_BASE"); // http://127.0.0.1:PORT
const TOKEN = env("SOV_CONSOLE_TOKEN");
const SPECIALIST = env("SOV_CONSOLE_SPECIALIST");
const SHOTS = env("SOV_CONSOLE_SHOTS");
const CHROMIUM = env("SOV_CHROMIUM");
mkdirSync(SHOTS, { recursive: true });
// axe-core, Deque's accessibility engine, run in the page through the debugging protocol (the
// console's CSP would refuse it as a script tag).
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const checked = [];
function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
  checked.push(what);
}

const userDataDir = join(SHOTS, "..", `chromium-profile-${process.pid}`);
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
  viewport: { width: 1280, height: 860 },
});
const shots = [];
async function shot(page, name) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  shots.push(path);
}

const page = context.pages()[0] ?? (await context.newPage());
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(m.text());
});
const failed = [];
page.on("response", (r) => {
  if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
page.on("dialog", (d) => {
  consoleErrors.push(`a dialog opened: ${d.message()}`);
  d.dismiss();
});

try {
  // Sign in.
  await page.goto(`${BASE}/console/`);
  await page.getByLabel("API token").waitFor();
  await shot(page, "signin");
  await page.getByLabel("API token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Pages" }).waitFor();
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === "sov_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  check(!stored.includes(TOKEN) && !stored.includes("sovs_"), "the page keeps neither the token nor the session secret");

  const offered = await page.getByLabel("Model or specialist").locator("option").allInnerTexts();
  check(!offered.includes("all-minilm-l6-v2"), "an embedding model is not offered for chat");

  // Chat with the specialist: the answer streams, the passages are cited beside it with their
  // hashes checked in the page, and HTML in the message is shown as text.
  const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  await page.getByLabel("Model or specialist").selectOption(SPECIALIST);
  await page.getByLabel("Message").fill(`${hostile} How many days of annual leave does a full-time member of staff get each year?`);
  await page.getByRole("button", { name: "Send" }).click();
  await page.locator(".citation").first().waitFor({ timeout: 120_000 });
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  const answer = await page.locator(".turn.assistant .content").first().innerText();
  check(answer.trim().length > 0, "the specialist's answer is shown");
  const cites = await page.locator(".citation").count();
  check(cites >= 1, `the answer cites ${cites} passages`);
  check((await page.locator(".citation .ok").count()) === cites, "every cited passage matches its SHA-256");
  check((await page.locator(".citation blockquote").first().innerText()).includes("leave"), "the cited passage's text is shown");
  check((await page.locator(".turn.user .content").first().innerText()).includes("<script>"), "HTML in a message is shown as text");
  check(!(await page.locator(".citation").first().innerText()).includes("undefined"), "citations name their document");
  await page.waitForTimeout(200);
  check((await page.evaluate(() => window.__pwned)) === undefined, "no script from a message or a document ran");
  await shot(page, "chat");

  // A specialist's tool call is shown as a step.
  await page.getByLabel("Model or specialist").selectOption("reckoner");
  await page.getByLabel("Message").fill("What is 12345 * 6789?");
  await page.getByRole("button", { name: "Send" }).click();
  await page.locator(".turn.assistant").nth(1).locator(".steps li").first().waitFor({ timeout: 120_000 });
  const step = await page.locator(".turn.assistant").nth(1).locator(".steps li").first().innerText();
  check(step.includes("calculator") && step.includes("83810205"), `the tool call is shown as a step: ${step}`);
  await page.getByRole("button", { name: "Send" }).waitFor({ timeout: 120_000 });
  check((await page.locator(".turn.assistant").nth(1).locator(".content").innerText()).includes("83810205"), "the tool's answer is shown");

  // Models, specialists and corpora, with their hashes; a document named with markup is text.
  await page.getByRole("link", { name: "Models" }).click();
  await page.getByRole("heading", { name: "Corpora", exact: true }).waitFor();
  check((await page.locator("table.specialists tbody tr").allInnerTexts()).some((r) => r.includes(SPECIALIST)), "the specialist is listed with its manifest");
  const docs = await page.locator("table.documents tbody tr").allInnerTexts();
  check(docs.some((d) => d.includes("annual-leave-policy.md")) && docs.some((d) => d.includes("<img src=x")), `the corpus's documents are listed, markup as text: ${docs.join(" | ")}`);
  check((await page.evaluate(() => window.__pwned)) === undefined, "no script from a document's name ran");
  await shot(page, "models");

  // The seal.
  await page.getByRole("link", { name: "Seal" }).click();
  await page.getByRole("heading", { name: "Controls" }).waitFor();
  check((await page.locator("table").first().locator("tbody tr").count()) > 0, "the seal page lists the controls");
  check((await page.getByText("Not covered by the seal").count()) === 1, "the seal page says what it does not cover");
  await shot(page, "seal");

  // The audit record: the latest entries, decoded in the browser; the sign-in is among them.
  await page.getByRole("link", { name: "Audit record" }).click();
  await page.locator("table.entries tbody tr").first().waitFor();
  await page.getByLabel("Kind").selectOption("session");
  const rows = await page.locator("table.entries tbody tr").allInnerTexts();
  check(rows.length >= 1 && rows.every((r) => r.includes("session")), "the kind filter shows the sign-in entry");
  await page.getByLabel("Kind").selectOption("inference");
  await page.locator("table.entries tbody tr a").first().click();
  await page.getByRole("heading", { name: /^Entry \d+$/ }).waitFor();
  check((await page.locator(".detail").innerText()).includes("session"), "an entry in full names the session it came through");
  // An entry's fields are text too: the corpus.change entry names the document whose name is
  // markup.
  await page.getByLabel("Kind").selectOption("corpus.change");
  const links = await page.locator("table.entries tbody tr a").allInnerTexts();
  check(links.length > 0, "the corpus changes are in the record");
  let named = false;
  for (const n of links) {
    await page.goto(`${BASE}/console/#/audit/${n}`);
    await page.getByRole("heading", { name: `Entry ${n}` }).waitFor();
    await page.locator(".detail dl").first().waitFor();
    if ((await page.locator(".detail").innerText()).includes("<img src=x")) named = true;
  }
  check(named, "an entry naming the document whose name is markup shows it as text");
  await page.getByLabel("Kind").selectOption("inference");
  check((await page.evaluate(() => window.__pwned)) === undefined, "no script from an entry's field ran");
  await shot(page, "audit");

  // Verification in the browser, with the console's own code: all checks pass on the record
  // as served; then one served byte is changed on its way to the page (an entry bundle, then the
  // checkpoint's root) and the check fails, naming what failed.
  async function verify() {
    await page.getByRole("button", { name: "Verify the record" }).click();
    const verdict = page.locator("[data-verdict]");
    await verdict.waitFor({ timeout: 120_000 });
    return { verdict: await verdict.getAttribute("data-verdict"), text: await verdict.innerText(), steps: await page.locator(".verify .steps li").allInnerTexts() };
  }
  const good = await verify();
  check(good.verdict === "verified", `the record verifies in the browser: ${good.text} ${good.steps.join(" | ")}`);
  for (const what of ["ML-DSA-44 signature", "Ed25519 signature", "entries", "root", "inclusion proof", "consistency proof"]) {
    check(good.steps.some((s) => s.includes(what) && s.startsWith("✓")), `the browser checked the ${what}`);
  }
  await shot(page, "verify");
  await page.route("**/v1/audit/tile/entries/**", async (route) => {
    const res = await route.fetch();
    const body = Buffer.from(await res.body());
    body[10] ^= 0x01; // a byte of entry 0's index
    await route.fulfill({ response: res, body });
  });
  const tampered = await verify();
  await page.unroute("**/v1/audit/tile/entries/**");
  check(tampered.verdict === "failed" && /entry 0: its bytes in tile\/entries\/000/.test(tampered.text), `a changed byte in an entry bundle fails the check and is named: ${tampered.text}`);
  await shot(page, "verify-tampered");
  await page.route("**/v1/audit/checkpoint", async (route) => {
    const res = await route.fetch();
    const note = (await res.text()).split("\n");
    // Another root: the tree the signatures are said to cover is not the one they signed.
    const root = Buffer.from(note[2], "base64");
    root[0] ^= 0x80;
    note[2] = root.toString("base64");
    await route.fulfill({ response: res, body: note.join("\n") });
  });
  const forged = await verify();
  await page.unroute("**/v1/audit/checkpoint");
  check(forged.verdict === "failed" && forged.steps.some((s) => s.startsWith("✗") && s.includes("ML-DSA-44 signature")) && forged.steps.some((s) => s.startsWith("✗") && s.includes("Ed25519 signature")), `a changed checkpoint fails both signatures: ${forged.steps.join(" | ")}`);

  // Activity: the plots fill from /metrics (the chat above generated tokens).
  await page.getByRole("link", { name: "Activity" }).click();
  await page.locator(".chart canvas").first().waitFor();
  await page.getByText(/\(([3-9]|\d\d+) reads so far/).waitFor({ timeout: 30_000 });
  check((await page.locator(".chart canvas").count()) === 4, "the activity page draws its four plots");
  const described = await page.locator(".chart [role=img]").first().getAttribute("aria-label");
  check(/requests \d/.test(described ?? ""), `the request rate is plotted: ${described}`);
  await shot(page, "activity");

  // Administration: add a principal, issue its token (shown once), revoke it; the policy set.
  await page.getByRole("link", { name: "Administration" }).click();
  await page.getByRole("heading", { name: "Policy set" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("bea");
  await page.getByLabel("Roles (comma-separated)").fill("analyst");
  await page.getByRole("button", { name: "Add principal" }).click();
  await page.getByRole("button", { name: "Issue token for bea" }).click();
  const issued = await page.locator("[data-secret]").innerText();
  check(/^sov_[A-Za-z0-9_-]{43}$/.test(issued), "a token issued in the console is shown once");
  const bea = await fetch(`${BASE}/v1/models`, { headers: { authorization: `Bearer ${issued}` } });
  check(bea.status === 200, "the issued token works");
  await page.getByRole("button", { name: "I have stored it" }).click();
  check((await page.locator("[data-secret]").count()) === 0, "the secret is gone from the page once stored");
  await page.getByRole("button", { name: `Revoke token ${issued.slice(4, 16)}` }).click();
  await page.getByRole("status").filter({ hasText: "Revoked" }).waitFor();
  const revoked = await fetch(`${BASE}/v1/models`, { headers: { authorization: `Bearer ${issued}` } });
  check(revoked.status === 401, "the token revoked in the console is refused");
  check(/^[0-9a-f]{64}$/.test(await page.locator(".facts dd code").first().innerText()), "the policy set's hash is shown");
  await shot(page, "admin");

  // axe's WCAG 2 A and AA rules (contrast, labels, names, landmarks...) on every page.
  for (const name of ["chat", "models", "seal", "audit", "activity", "admin"]) {
    await page.goto(`${BASE}/console/#/${name}`);
    await page.locator("h1:visible").first().waitFor();
    await page.waitForTimeout(300);
    await page.evaluate(AXE);
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
      return r.violations.map((v) => `${v.id} (${v.impact}, ${v.nodes.length}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
    });
    check(found.length === 0, `the ${name} page passes axe's WCAG 2.1 A/AA rules: ${found.join("; ")}`);
  }

  // A phone's width: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const name of ["chat", "models", "seal", "audit", "activity", "admin"]) {
    await page.goto(`${BASE}/console/#/${name}`);
    await page.locator("h1:visible").first().waitFor();
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `the ${name} page fits a phone's width (${overflow}px over)`);
    await shot(page, `${name}-phone`);
  }
  await page.setViewportSize({ width: 1280, height: 860 });

  // Accessibility basics: every control has a label, the first Tab reaches the skip link.
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")].filter((e) => e.labels === null || e.labels.length === 0).length,
  );
  check(unlabelled === 0, "every form control has a label");
  await page.reload();
  await page.locator("h1:visible").first().waitFor();
  await page.keyboard.press("Tab");
  check((await page.evaluate(() => document.activeElement?.textContent)) === "Skip to content", "the first Tab reaches the skip link");


  // Sign out: the page goes back to the sign-in form, and the old cookie, replayed, is refused.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").waitFor();
  const replay = await fetch(`${BASE}/v1/models`, { headers: { cookie: `sov_session=${session.value}` } });
  check(replay.status === 401, `the cookie replayed after sign-out is refused (${replay.status})`);
  await page.goto(`${BASE}/console/#/audit`);
  await page.getByLabel("API token").waitFor();
  check(true, "after sign-out the console asks to sign in again");
  // The only failed requests: asking for the session before signing in, and after signing out.
  const unexpected = failed.filter((f) => !/^401 GET .*\/v1\/console\/session$/.test(f));
  check(unexpected.length === 0, `no request failed but the session checks: ${unexpected.join("; ")}`);
  const errors = consoleErrors.filter((e) => !e.includes("status of 401"));
  check(errors.length === 0, `no errors in the page: ${errors.join("; ")}`);
  console.log(JSON.stringify({ ok: true, checked, screenshots: shots }));
} catch (e) {
  try {
    await shot(page, "failure");
  } catch {
    // the page may be gone
  }
  console.error(e.stack || String(e));
  console.error(`checked before the failure: ${JSON.stringify(checked)}; page errors: ${JSON.stringify(consoleErrors)}; failed requests: ${JSON.stringify(failed)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
