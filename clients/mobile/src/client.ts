/**
 * The app's side of `@jamuna/protocol`: the same REST client, session and
 * socket (with its outbox, resume and dedupe) as the widget and the
 * dashboard, on AsyncStorage instead of localStorage.
 */
import AsyncStorage from '@react-native-async-storage/async-storage';
import { ApiClient, type AsyncKeyValueStore, Connection, Outbox, PersistentStore, Session, type SocketFactory } from '@jamuna/protocol';
import type { AppConfig } from './config';

/** Every key the app stores starts with this. */
export const STORAGE_PREFIX = 'jamuna.';
const SESSION_KEY = `${STORAGE_PREFIX}session`;

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
