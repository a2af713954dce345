/**
 * What every browser test needs: a real `jamuna serve` on a free port with a
 * fresh data directory (the binary comes from JAMUNA_BIN), and Debian's
 * Chromium driven by playwright-core (never a downloaded browser).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { TestContext } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
export const outputDir = join(repoRoot, 'test-output');

export interface Server {
  url: string;
  widgetKey: string;
  admin: { tenant: string; email: string; password: string };
  stop(): Promise<void>;
  logs(): string;
}

export async function startServer(): Promise<Server> {
  const bin = process.env.JAMUNA_BIN;
  if (!bin) throw new Error('JAMUNA_BIN is not set: build with `cargo build -p jamuna` and point JAMUNA_BIN at $CARGO_TARGET_DIR/debug/jamuna (scripts/run-tests.sh does this)');
  const dataDir = mkdtempSync(join(tmpdir(), 'jamuna-e2e-'));
  const password = 'e2e-admin-password-1';
  const email = 'admin@demo.example';
  const child: ChildProcess = spawn(bin, ['serve', '--dev', '--listen', '127.0.0.1:0'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      JAMUNA_DATA_DIR: dataDir,
      JAMUNA_DEMO_ADMIN_EMAIL: email,
      JAMUNA_DEMO_ADMIN_PASSWORD: password,
      JAMUNA_STATIC_DIR: join(repoRoot, 'clients/dist'),
      JAMUNA_MODEL_DIR: process.env.JAMUNA_MODEL_DIR ?? join(repoRoot, 'models/all-MiniLM-L6-v2'),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const started = new Promise<{ url: string; widgetKey: string }>((res, rej) => {
    let widgetKey = '';
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      log += line + '\n';
      const k = /widget key: (wk_\S+)/.exec(line);
      if (k?.[1]) widgetKey = k[1];
      const l = /listening on (http:\/\/\S+)/.exec(line);
      if (l?.[1]) res({ url: l[1], widgetKey });
    });
    void exited.then((code) => rej(new Error(`jamuna serve exited (${code}) before listening:\n${log}`)));
  });
  const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`jamuna serve did not start in 60 s:\n${log}`)), 60_000).unref());
  let info: { url: string; widgetKey: string };
  try {
    info = await Promise.race([started, timeout]);
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  if (!info.widgetKey) throw new Error(`no widget key printed:\n${log}`);
  return {
    ...info,
    admin: { tenant: 'demo', email, password },
    logs: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  // playwright-core gives each launch a fresh, temporary --user-data-dir of its own.
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** One test's own server and browser (each test starts clean). */
export async function setUp(): Promise<{ server: Server; browser: Browser }> {
  const server = await startServer();
  return { server, browser: await launchBrowser() };
}

/** Closes what `setUp` opened; prints the server's output when the test failed. */
export async function tearDown(ctx: TestContext, server: Server | undefined, browser: Browser | undefined): Promise<void> {
  await browser?.close();
  if (ctx.task.result?.state === 'fail') console.error(`--- jamuna serve output ---\n${server?.logs()}`);
  await server?.stop();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(outputDir, { recursive: true });
  const path = join(outputDir, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Opens the demo site with the widget and its chat panel. */
export async function openWidget(context: BrowserContext, server: Server): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/?key=${encodeURIComponent(server.widgetKey)}`);
  await page.getByRole('button', { name: /open chat/i }).click();
  await page.getByLabel('Your message').waitFor();
  await page.getByPlaceholder('Write a message…').waitFor();
  return page;
}

export async function widgetSend(page: Page, text: string): Promise<void> {
  const box = page.getByLabel('Your message');
  await box.fill(text);
  await box.press('Enter');
}

/** Signs in to the dashboard and waits for its live socket. */
export async function adminLogin(context: BrowserContext, server: Server, path = ''): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${server.url}/admin/${path}`);
  await page.getByLabel('Workspace').fill(server.admin.tenant);
  await page.getByLabel('E-mail').fill(server.admin.email);
  await page.getByLabel('Password').fill(server.admin.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('connection').getByText('Live').waitFor();
  return page;
}

/** Calls the REST API as the demo admin. */
export async function adminApi(server: Server): Promise<<T>(method: string, path: string, body?: unknown) => Promise<T>> {
  const res = await fetch(`${server.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant: server.admin.tenant, email: server.admin.email, password: server.admin.password }),
  });
  const { access_token } = (await res.json()) as { access_token: string };
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${server.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${access_token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${method} ${path} → ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
}

/**
 * Collects the Content-Security-Policy violations Chromium reports on the
 * pages of `context` (as console messages), so a test can assert there are
 * none: a policy that blocks the dashboard is worse than none.
 */
export function watchCsp(context: BrowserContext): string[] {
  const violations: string[] = [];
  context.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(`${m.location().url}: ${m.text()}`);
  });
  return violations;
}
