/**
 * Where the app connects: the one place the server URL and the tenant are set.
 *
 * Expo inlines `EXPO_PUBLIC_*` variables into the bundle when it is built
 * (`EXPO_PUBLIC_JAMUNA_SERVER_URL=https://chat.example.com npx expo export`).
 * In a browser (the web build served at `/mobile/`), `?server=`, `?key=` and
 * `?tenant=` in the page's address override them, and the server defaults to
 * the page's own origin.
 *
 * Nothing here is a secret: the tenant key is the public widget key that every
 * site embedding the widget shows in its script tag, and it only lets a
 * visitor open a conversation with that tenant. Accounts sign in with their
 * own password at run time.
 *
 * `identity` is not read from the build: a host app that signs its customers
 * in passes the one signed in (with the signature its server made) at run
 * time, as `<App identity={…} />` or in the config it gives the app.
 */
import type { Identity } from '@jamuna/protocol';

export interface AppConfig {
  /** The Jamuna server, e.g. `https://chat.example.com` (no trailing slash). */
  serverUrl: string;
  /** The tenant's public widget key (`wk_…`), for visitors. */
  tenantKey: string;
  /** The tenant's id, for customers who sign in with an account. */
  tenant: string;
  /** The host app's signed-in customer, signed by its server: identified instead of anonymous (see `identifyCustomer`). */
  identity?: Identity;
}

interface Place {
  origin: string;
  search: string;
}

const DEFAULTS: AppConfig = { serverUrl: 'http://localhost:8080', tenantKey: '', tenant: 'demo' };

export function readConfig(env: Record<string, string | undefined>, place: Place | null): AppConfig {
  const query = new URLSearchParams(place?.search ?? '');
  const pick = (param: string, variable: string | undefined, fallback: string): string => query.get(param)?.trim() || variable?.trim() || fallback;
  const serverUrl = pick('server', env.EXPO_PUBLIC_JAMUNA_SERVER_URL, place?.origin ?? DEFAULTS.serverUrl).replace(/\/+$/, '');
  return {
    serverUrl,
    tenantKey: pick('key', env.EXPO_PUBLIC_JAMUNA_TENANT_KEY, DEFAULTS.tenantKey),
    tenant: pick('tenant', env.EXPO_PUBLIC_JAMUNA_TENANT, DEFAULTS.tenant),
  };
}

/** The page's address on the web; null in the native app. */
function currentPlace(): Place | null {
  const loc = (globalThis as { location?: { origin?: unknown; search?: unknown } }).location;
  if (!loc || typeof loc.origin !== 'string' || !/^https?:/.test(loc.origin)) return null;
  return { origin: loc.origin, search: typeof loc.search === 'string' ? loc.search : '' };
}

/** The configuration of this build (each variable spelled out: Expo inlines only literal `process.env.EXPO_PUBLIC_*`). */
export function appConfig(): AppConfig {
  return readConfig(
    {
      EXPO_PUBLIC_JAMUNA_SERVER_URL: process.env.EXPO_PUBLIC_JAMUNA_SERVER_URL,
      EXPO_PUBLIC_JAMUNA_TENANT_KEY: process.env.EXPO_PUBLIC_JAMUNA_TENANT_KEY,
      EXPO_PUBLIC_JAMUNA_TENANT: process.env.EXPO_PUBLIC_JAMUNA_TENANT,
    },
    currentPlace(),
  );
}
