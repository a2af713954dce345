/**
 * One conversation on the phone: its events from the socket (history first,
 * from version 0, then live), the messages still in the outbox, typing, and
 * the customer's actions. The folding is the protocol package's, as in the widget.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import {
  type ApiClient,
  ApiError,
  type Connection,
  type ConnectionStatus,
  type ConversationView,
  type EventFrame,
  type PendingMessage,
  TypingSignal,
  attachmentError,
  foldConversation,
  mergeEvents,
  newId,
} from '@jamuna/protocol';

export interface ConversationModel {
  view: ConversationView;
  status: ConnectionStatus;
  agentTyping: boolean;
  /** Display names of the agents who joined, by user id ('' when they have none). */
  agentNames: Record<string, string>;
  error: string | null;
  send(text: string): void;
  /** Uploads a file and posts it with the text (which may be empty); false (and `error` says why) when it failed. */
  attach(file: Blob, name: string, text: string): Promise<boolean>;
  askHuman(): Promise<void>;
  rateAnswer(version: number, helpful: boolean): Promise<void>;
  rateConversation(score: number): Promise<void>;
  typing(on: boolean): void;
}

/** The detail's `agents` (id and display name), on servers that send it. */
function agentsOf(detail: object): { id: string; name: string | null }[] {
  const a = (detail as { agents?: unknown }).agents;
  return Array.isArray(a) ? a.filter((x): x is { id: string; name: string | null } => typeof x?.id === 'string') : [];
}

const message = (e: unknown, fallback: string): string => (e instanceof ApiError ? e.message : fallback);

export function useConversation(api: ApiClient, conn: Connection, id: string): ConversationModel {
  const [events, setEvents] = useState<EventFrame[]>([]);
  const [pending, setPending] = useState<PendingMessage[]>(() => conn.pending(id));
  const [status, setStatus] = useState<ConnectionStatus>(conn.status);
  const [agentTyping, setAgentTyping] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setEvents([]);
    const offs = [
      conn.on('event', (f) => {
        if (f.conversation_id === id) setEvents((old) => mergeEvents(old, [f]));
      }),
      conn.on('outbox', () => setPending(conn.pending(id))),
      conn.on('status', setStatus),
      conn.on('typing', (t) => {
        if (t.conversation_id === id && t.role !== 'customer') setAgentTyping(t.typing);
      }),
    ];
    setPending(conn.pending(id));
    setStatus(conn.status);
    conn.subscribe(id, 0);
    return () => {
      for (const off of offs) off();
      conn.unsubscribe(id);
    };
  }, [conn, id]);

  // A message from the agent ends their typing indicator.
  useEffect(() => {
    const last = events[events.length - 1];
    if (last?.event.type === 'MessagePosted' && last.event.author.kind === 'agent') setAgentTyping(false);
  }, [events]);

  const view = useMemo(() => foldConversation(id, events, pending, 'customer'), [id, events, pending]);

  // An agent's name is not in the events (only their id): ask the detail once per new agent.
  const [agentNames, setAgentNames] = useState<Record<string, string>>({});
  const unnamed = view.agents.filter((a) => !(a in agentNames)).join(',');
  useEffect(() => {
    if (unnamed === '') return;
    let live = true;
    api
      .conversation(id)
      .then((d) => {
        if (!live) return;
        setAgentNames((prev) => {
          const next = { ...prev };
          for (const a of agentsOf(d)) next[a.id] = a.name ?? '';
          for (const u of unnamed.split(',')) if (!(u in next)) next[u] = '';
          return next;
        });
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [api, id, unnamed]);

  const send = useCallback(
    (text: string) => {
      const t = text.trim();
      if (!t) return;
      setError(null);
      conn.send(id, t);
      setPending(conn.pending(id));
    },
    [conn, id],
  );

  // Not through the outbox: a file is sent now or not at all (413, 415, 429 and offline say why).
  const attach = useCallback(
    async (file: Blob, name: string, text: string): Promise<boolean> => {
      setError(null);
      try {
        const up = await api.uploadAttachment(id, file, name);
        await api.postMessage(id, newId(), text.trim(), [up.id]);
        return true;
      } catch (e) {
        setError(attachmentError(e));
        return false;
      }
    },
    [api, id],
  );

  const askHuman = useCallback(async () => {
    try {
      await api.handoff(id);
    } catch (e) {
      setError(message(e, 'Could not reach an agent.'));
    }
  }, [api, id]);

  const rateAnswer = useCallback(
    async (version: number, helpful: boolean) => {
      try {
        await api.feedback(id, { kind: 'answer', answer_version: version, helpful });
      } catch (e) {
        setError(message(e, 'Your feedback could not be sent.'));
      }
    },
    [api, id],
  );

  const rateConversation = useCallback(
    async (score: number) => {
      try {
        await api.feedback(id, { kind: 'csat', score });
      } catch (e) {
        setError(message(e, 'Your rating could not be sent.'));
      }
    },
    [api, id],
  );

  const typingSignal = useMemo(() => new TypingSignal((on) => conn.typing(id, on)), [conn, id]);
  useEffect(() => () => typingSignal.dispose(), [typingSignal]);
  const typing = useCallback((on: boolean) => typingSignal.set(on), [typingSignal]);

  return { view, status, agentTyping, agentNames, error, send, attach, askHuman, rateAnswer, rateConversation, typing };
}
