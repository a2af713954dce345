/**
 * The visitor's side of a conversation: an anonymous visitor session kept in
 * localStorage (a reload continues the same conversation), the socket with
 * its outbox, and the conversation folded from its events.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  ApiClient,
  ApiError,
  AttachmentUrls,
  attachmentError,
  newId,
  Connection,
  type ConnectionStatus,
  type EventFrame,
  Outbox,
  type PendingMessage,
  Session,
  TypingSignal,
  browserStore,
  foldConversation,
  mergeEvents,
  type ConversationView,
  type Identity,
  type PrechatMode,
} from '@jamuna/protocol';
import type { WidgetConfig } from './config';

export interface Chat {
  ready: boolean;
  status: ConnectionStatus;
  /** The socket was open once and is not now. */
  interrupted: boolean;
  conversationId: string | null;
  view: ConversationView | null;
  agentTyping: boolean;
  /** Display names of the agents who joined, by user id (from the conversation's detail). */
  agentNames: Record<string, string>;
  error: string | null;
  send(text: string): Promise<boolean>;
  /** Uploads `file` and posts it, with `text` if any. */
  attach(file: File, text: string): Promise<boolean>;
  /** An attachment's object URL (fetched with the visitor's token). */
  fileUrl(attachmentId: string): Promise<string>;
  /** Saves an attachment as a file. */
  saveFile(attachmentId: string, name: string): Promise<void>;
  retry(clientMessageId: string): void;
  discard(clientMessageId: string): void;
  askHuman(): Promise<void>;
  rateAnswer(version: number, helpful: boolean): Promise<void>;
  rateConversation(score: number, comment: string): Promise<void>;
  typing(on: boolean): void;
  newConversation(): Promise<void>;
  start(): void;
  /** The tenant's pre-chat form, and whether this visitor still has to see it. */
  prechat: PrechatMode;
  needsDetails: boolean;
  giveDetails(name: string, email: string): Promise<boolean>;
  skipDetails(): void;
  /** `Jamuna.identify(...)`: the host page's signed-in customer. */
  identify(identity: Identity): Promise<boolean>;
}

export function useChat(config: WidgetConfig): Chat {
  const store = useMemo(() => browserStore(), []);
  const prefix = `jamuna.widget.${config.tenantKey}`;
  const api = useMemo(() => new ApiClient(config.apiBase, new Session(store, `${prefix}.session`)), [config.apiBase, store, prefix]);
  const [conn, setConn] = useState<Connection | null>(null);
  const [status, setStatus] = useState<ConnectionStatus>('idle');
  const [interrupted, setInterrupted] = useState(false);
  const [conversationId, setConversationId] = useState<string | null>(() => store.getItem(`${prefix}.conversation`));
  const [events, setEvents] = useState<EventFrame[]>([]);
  const [pending, setPending] = useState<PendingMessage[]>([]);
  const [agentTyping, setAgentTyping] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const starting = useRef(false);
  const conversationRef = useRef(conversationId);
  conversationRef.current = conversationId;
  const [prechat, setPrechat] = useState<PrechatMode>('off');
  const [detailsDone, setDetailsDone] = useState(() => store.getItem(`${prefix}.details`) !== null);

  const start = useCallback(() => {
    if (starting.current) return;
    starting.current = true;
    void (async () => {
      try {
        if (!api.session.current) await api.visitor(config.tenantKey);
      } catch (e) {
        starting.current = false;
        setError(e instanceof ApiError && e.code === 'network' ? 'We cannot reach the chat right now. Please try again in a moment.' : 'The chat is not available on this site.');
        return;
      }
      api
        .tenant()
        .then((t) => setPrechat(t.prechat ?? 'off'))
        .catch(() => undefined);
      const user = api.session.current?.user_id ?? 'anon';
      const c = new Connection({
        url: api.socketUrl,
        token: (force) => api.token(force),
        outbox: new Outbox(store, `${prefix}.outbox.${user}`),
        post: (id, cmid, text) => api.postMessage(id, cmid, text),
      });
      setConn(c);
    })();
  }, [api, config.tenantKey, prefix, store]);

  // Someone who chatted before gets their conversation back (and unread replies) without opening the panel.
  useEffect(() => {
    if (api.session.current) start();
  }, [api, start]);

  useEffect(() => {
    if (!conn) return;
    let wasOpen = false;
    const offs = [
      conn.on('status', (s) => {
        setStatus(s);
        if (s === 'open') wasOpen = true;
        setInterrupted(wasOpen && s !== 'open');
      }),
      conn.on('event', (f) => {
        if (f.conversation_id !== conversationRef.current) return;
        setEvents((old) => mergeEvents(old, [f]));
      }),
      conn.on('outbox', () => setPending(conn.pending())),
      conn.on('typing', (t) => {
        if (t.conversation_id === conversationRef.current && t.role !== 'customer') setAgentTyping(t.typing);
      }),
      conn.on('error', (e) => {
        if (e.code === 'not_found' || e.code === 'forbidden') {
          // The stored conversation is gone (or belongs to an old session): start afresh.
          store.removeItem(`${prefix}.conversation`);
          setConversationId(null);
        } else if (e.code === 'origin_not_allowed') {
          setError(e.message);
        }
      }),
      conn.on('unauthorized', () => {
        // The visitor session expired: a new visitor, a new conversation.
        api.session.clear();
        store.removeItem(`${prefix}.conversation`);
        setConversationId(null);
        setEvents([]);
        starting.current = false;
        setConn(null);
        start();
      }),
    ];
    setPending(conn.pending());
    conn.start();
    return () => {
      for (const off of offs) off();
      conn.stop();
    };
  }, [conn, api, prefix, store, start]);

  useEffect(() => {
    if (!conn || !conversationId) return;
    setEvents([]);
    conn.subscribe(conversationId, 0);
    return () => conn.unsubscribe(conversationId);
  }, [conn, conversationId]);

  // Typing indicators do not outlive a message from the agent.
  useEffect(() => {
    const last = events[events.length - 1];
    if (last && last.event.type === 'MessagePosted' && last.event.author.kind === 'agent') setAgentTyping(false);
  }, [events]);

  const ensureConversation = useCallback(async (): Promise<string | null> => {
    if (conversationRef.current) return conversationRef.current;
    try {
      const { id } = await api.startConversation('web');
      store.setItem(`${prefix}.conversation`, id);
      conversationRef.current = id;
      setConversationId(id);
      return id;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'prechat_required') {
        store.removeItem(`${prefix}.details`);
        setPrechat('required');
        setDetailsDone(false);
        return null;
      }
      setError(e instanceof ApiError && e.code === 'network' ? 'You seem to be offline. Try again when you are back online.' : 'The conversation could not be started.');
      return null;
    }
  }, [api, prefix, store]);

  const send = useCallback(
    async (text: string): Promise<boolean> => {
      const t = text.trim();
      if (!t || !conn) return false;
      setError(null);
      const id = await ensureConversation();
      if (!id) return false;
      conn.send(id, t);
      setPending(conn.pending());
      return true;
    },
    [conn, ensureConversation],
  );

  const files = useMemo(() => new AttachmentUrls(api), [api]);
  useEffect(() => () => files.dispose(), [files]);
  const attach = useCallback(
    async (file: File, text: string): Promise<boolean> => {
      setError(null);
      const id = await ensureConversation();
      if (!id) return false;
      try {
        const up = await api.uploadAttachment(id, file, file.name || 'file');
        await api.postMessage(id, newId(), text.trim(), [up.id]);
        return true;
      } catch (e) {
        setError(attachmentError(e));
        return false;
      }
    },
    [api, ensureConversation],
  );
  const fileUrl = useCallback((attachmentId: string) => files.url(conversationRef.current ?? '', attachmentId), [files]);
  const saveFile = useCallback((attachmentId: string, name: string) => files.save(conversationRef.current ?? '', attachmentId, name), [files]);

  const view = useMemo(() => (conversationId ? foldConversation(conversationId, events, pending, 'customer') : null), [conversationId, events, pending]);

  // An agent's name is not in the events (only their id): ask the detail once per new agent.
  const [agentNames, setAgentNames] = useState<Record<string, string>>({});
  const unnamed = view?.agents.filter((a) => !(a in agentNames)).join(',') ?? '';
  useEffect(() => {
    if (!conversationId || unnamed === '') return;
    let live = true;
    api
      .conversation(conversationId)
      .then((d) => {
        if (!live) return;
        setAgentNames((prev) => {
          const next = { ...prev };
          for (const a of d.agents ?? []) next[a.id] = a.name ?? '';
          for (const id of unnamed.split(',')) if (!(id in next)) next[id] = '';
          return next;
        });
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [api, conversationId, unnamed]);

  const askHuman = useCallback(async () => {
    const id = await ensureConversation();
    if (!id) return;
    try {
      await api.handoff(id);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not reach an agent.');
    }
  }, [api, ensureConversation]);

  const rateAnswer = useCallback(
    async (version: number, helpful: boolean) => {
      if (!conversationRef.current) return;
      try {
        await api.feedback(conversationRef.current, { kind: 'answer', answer_version: version, helpful });
      } catch (e) {
        setError(e instanceof ApiError ? e.message : 'Your feedback could not be sent.');
      }
    },
    [api],
  );

  const rateConversation = useCallback(
    async (score: number, comment: string) => {
      if (!conversationRef.current) return;
      try {
        await api.feedback(conversationRef.current, comment.trim() ? { kind: 'csat', score, comment: comment.trim() } : { kind: 'csat', score });
      } catch (e) {
        setError(e instanceof ApiError ? e.message : 'Your rating could not be sent.');
      }
    },
    [api],
  );

  const newConversation = useCallback(async () => {
    store.removeItem(`${prefix}.conversation`);
    conversationRef.current = null;
    setConversationId(null);
    setEvents([]);
  }, [prefix, store]);

  const typingSignal = useMemo(
    () =>
      new TypingSignal((on) => {
        const id = conversationRef.current;
        if (conn && id) conn.typing(id, on);
      }),
    [conn],
  );
  useEffect(() => () => typingSignal.dispose(), [typingSignal]);
  const typing = useCallback(
    (on: boolean) => {
      if (conn && conversationRef.current) typingSignal.set(on);
    },
    [conn, typingSignal],
  );

  const detailsGiven = useCallback(() => {
    store.setItem(`${prefix}.details`, '1');
    setDetailsDone(true);
  }, [prefix, store]);

  const giveDetails = useCallback(
    async (name: string, email: string): Promise<boolean> => {
      setError(null);
      try {
        await api.giveDetails(name.trim(), email.trim());
        detailsGiven();
        return true;
      } catch (e) {
        setError(e instanceof ApiError && e.status === 400 ? 'Please give your name and a valid e-mail address.' : 'Your details could not be sent.');
        return false;
      }
    },
    [api, detailsGiven],
  );

  const identify = useCallback(
    async (identity: Identity): Promise<boolean> => {
      const before = api.session.current?.user_id ?? null;
      try {
        const t = await api.identify(config.tenantKey, identity);
        detailsGiven();
        if (before === t.user_id) return true;
        // Another customer (or this one on a new device): their latest open conversation, if any.
        store.removeItem(`${prefix}.conversation`);
        conversationRef.current = null;
        setConversationId(null);
        setEvents([]);
        const latest = (await api.conversations({}).catch(() => null))?.items.find((c) => c.status !== 'resolved');
        if (latest) {
          store.setItem(`${prefix}.conversation`, latest.id);
          conversationRef.current = latest.id;
          setConversationId(latest.id);
        }
        starting.current = false;
        setConn(null);
        start();
        return true;
      } catch (e) {
        console.error('jamuna: identify was refused', e);
        return false;
      }
    },
    [api, config.tenantKey, detailsGiven, prefix, start, store],
  );

  return {
    prechat,
    needsDetails: prechat !== 'off' && !detailsDone,
    giveDetails,
    skipDetails: detailsGiven,
    identify,
    ready: conn !== null,
    status,
    interrupted,
    conversationId,
    view,
    agentTyping,
    agentNames,
    error,
    send,
    attach,
    fileUrl,
    saveFile,
    retry: (cmid) => conn?.retry(cmid),
    discard: (cmid) => conn?.discard(cmid),
    askHuman,
    rateAnswer,
    rateConversation,
    typing,
    newConversation,
    start,
  };
}
