/** The dashboard's one API client and socket, shared by every page. */
import { ApiClient, Connection, Outbox, Session, browserStore } from '@jamuna/protocol';

const store = browserStore();
export const api = new ApiClient(location.origin, new Session(store, 'jamuna.admin.session'));

let connection: Connection | null = null;

/** The socket of the signed-in user, started on first use. */
export function socket(): Connection {
  if (!connection) {
    const user = api.session.current?.user_id ?? 'anon';
    connection = new Connection({
      url: api.socketUrl,
      token: (force) => api.token(force),
      outbox: new Outbox(store, `jamuna.admin.outbox.${user}`),
      post: (id, cmid, text) => api.postMessage(id, cmid, text),
    });
    connection.subscribeInbox();
    connection.start();
  }
  return connection;
}

export function closeSocket(): void {
  connection?.stop();
  connection = null;
}

export const storage = store;
