/**
 * The app's side of `@jamuna/protocol`: the same REST client, session and
 * socket (with its outbox, resume and dedupe) as the widget and the
 * dashboard, on AsyncStorage instead of localStorage.
 */
import AsyncStorage from '@react-native-async-storage/async-storage';
import { ApiClient, ApiError, type AsyncKeyValueStore, type Identity, Connection, Outbox, PersistentStore, Session, type SocketFactory } from '@jamuna/protocol';
import type { AppConfig } from './config';

/** Every key the app stores starts with this. */
export const STORAGE_PREFIX = 'jamuna.';
const SESSION_KEY = `${STORAGE_PREFIX}session`;
/** The host app's id of the customer the stored session was identified as (absent: anonymous or an account). */
export const IDENTITY_KEY = `${STORAGE_PREFIX}identity`;

export interface Services {
  config: AppConfig;
  api: ApiClient;
  store: PersistentStore;
}

/** Test seams: the device storage, HTTP and sockets. */
export interface Platform {
  storage?: AsyncKeyValueStore;
  fetch?: typeof fetch;
  socket?: SocketFactory;
}

/** Reads what the last run stored (session, outbox) and makes the REST client. */
export async function openServices(config: AppConfig, platform: Platform = {}): Promise<Services> {
  const store = await PersistentStore.open(platform.storage ?? AsyncStorage, STORAGE_PREFIX);
  const api = new ApiClient(config.serverUrl, new Session(store, SESSION_KEY), platform.fetch);
  return { config, api, store };
}

/** The socket of the signed-in user, with the outbox the last run left (not started). */
export function openConnection(services: Services, platform: Platform = {}): Connection {
  const { api, store } = services;
  const user = api.session.current?.user_id ?? 'anon';
  return new Connection({
    url: api.socketUrl,
    token: (force) => api.token(force),
    outbox: new Outbox(store, `${STORAGE_PREFIX}outbox.${user}`),
    post: (id, cmid, text) => api.postMessage(id, cmid, text),
    socket: platform.socket,
  });
}

/** How the start went for a host app's customer: signed in or not, and what to tell them. */
export interface IdentifyOutcome {
  signedIn: boolean;
  /** Shown above the app until dismissed; null when all went as asked. */
  notice: string | null;
}

export const REFUSED_NOTICE =
  'We could not confirm who you are, so you are chatting as an anonymous visitor: your earlier conversations are not shown here.';
export const OFFLINE_NOTICE = 'The server cannot be reached, so we could not confirm who you are yet. Check your connection and reopen the app.';

/** Ends the stored session (and forgets whom it was identified as). */
export function forgetSession(services: Services, revoke = true): void {
  services.store.removeItem(IDENTITY_KEY);
  if (revoke) void services.api.logout();
  else services.api.session.clear();
}

/**
 * The host app's signed-in customer (`POST /api/v1/auth/identify`): the same
 * id on any device is the same customer, with their past conversations. The
 * visitor's token already here goes along: the first identify of an id makes
 * that visitor the customer (later ones answer the holder's tokens). A session
 * identified as someone else is ended first, never carried over.
 *
 * Refused (401 `invalid_signature`, an unknown widget key, …): the customer
 * continues as an anonymous visitor — the one already on this device, else a
 * new one — with a notice saying so; a session this device had for an
 * identified customer is ended, since nothing proves it is still theirs.
 * Offline: the same customer's stored session carries on (their outbox goes
 * out later); anything else waits with a notice.
 */
export async function identifyCustomer(services: Services, identity: Identity): Promise<IdentifyOutcome> {
  const { api, store, config } = services;
  const marked = store.getItem(IDENTITY_KEY);
  if (marked !== null && marked !== identity.id) forgetSession(services);
  try {
    await api.identify(config.tenantKey, identity);
    store.setItem(IDENTITY_KEY, identity.id);
    return { signedIn: true, notice: null };
  } catch (e) {
    if (e instanceof ApiError && e.code === 'network') {
      if (marked === identity.id && api.session.current) return { signedIn: true, notice: null };
      return { signedIn: api.session.current !== null, notice: OFFLINE_NOTICE };
    }
    if (store.getItem(IDENTITY_KEY) !== null) forgetSession(services);
    if (api.session.current) return { signedIn: true, notice: REFUSED_NOTICE };
    try {
      await api.visitor(config.tenantKey);
      return { signedIn: true, notice: REFUSED_NOTICE };
    } catch {
      return { signedIn: false, notice: 'We could not confirm who you are, and the chat could not start. Please try again.' };
    }
  }
}
