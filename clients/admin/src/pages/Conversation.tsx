import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, type ChatMessage, type EventFrame, type PendingMessage, foldConversation, mergeEvents, HANDOFF_REASONS } from '@jamuna/protocol';
import { api, socket } from '../client';
import { usePeople } from '../people';
import { teams as teamsApi, type Team } from '../teams';
import { time, why } from '../format';

export function ConversationPane({ id, onBack, onSeen }: { id: string; onBack: () => void; onSeen: (id: string, version: number) => void }) {
  const people = usePeople();
  const me = people.me;
  const [events, setEvents] = useState<EventFrame[]>([]);
  const [pending, setPending] = useState<PendingMessage[]>(() => socket().pending(id));
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [customerTyping, setCustomerTyping] = useState(false);
  const [draft, setDraft] = useState('');
  const [newTag, setNewTag] = useState('');
  const [busy, setBusy] = useState(false);
  const [teamList, setTeamList] = useState<Team[]>([]);
  useEffect(() => {
    teamsApi
      .list()
      .then((l) => setTeamList(l.teams))
      .catch(() => undefined);
  }, []);
  const list = useRef<HTMLDivElement>(null);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const typingOn = useRef(false);

  useEffect(() => {
    const s = socket();
    let alive = true;
    const offs = [
      s.on('event', (f) => {
        if (f.conversation_id === id && s.isSubscribed(id)) setEvents((old) => mergeEvents(old, [f]));
      }),
      s.on('outbox', () => setPending(s.pending(id))),
      s.on('typing', (t) => {
        if (t.conversation_id === id && t.role === 'customer') setCustomerTyping(t.typing);
      }),
    ];
    api
      .conversation(id)
      .then((d) => {
        if (!alive) return;
        setEvents((old) => mergeEvents(old, d.events));
        s.subscribe(id, d.version);
        setLoaded(true);
      })
      .catch((e: unknown) => setError(e instanceof ApiError && e.status === 404 ? 'This conversation does not exist.' : e instanceof Error ? e.message : 'Could not load the conversation.'));
    return () => {
      alive = false;
      offs.forEach((o) => o());
      s.unsubscribe(id);
    };
  }, [id]);

  const view = useMemo(() => foldConversation(id, events, pending, 'agent', me.id), [id, events, pending, me.id]);

  useEffect(() => {
    if (view.version) onSeen(id, view.version);
  }, [id, view.version, onSeen]);

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [view.messages.length, customerTyping]);

  useEffect(() => {
    const last = view.messages[view.messages.length - 1];
    if (last?.role === 'customer') setCustomerTyping(false);
  }, [view.messages]);

  const act = async (f: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'That did not work.');
    } finally {
      setBusy(false);
    }
  };

  const typing = (on: boolean): void => {
    const s = socket();
    if (typingTimer.current) clearTimeout(typingTimer.current);
    if (on) {
      if (!typingOn.current) s.typing(id, true);
      typingOn.current = true;
      typingTimer.current = setTimeout(() => {
        typingOn.current = false;
        s.typing(id, false);
      }, 4000);
    } else if (typingOn.current) {
      typingOn.current = false;
      s.typing(id, false);
    }
  };

  const send = async (): Promise<void> => {
    const text = draft.trim();
    if (!text) return;
    setDraft('');
    typing(false);
    // Replying to an unassigned conversation takes it (the bot then stays silent).
    if (!view.assignee) await api.assign(id).catch(() => undefined);
    socket().send(id, text);
    setPending(socket().pending(id));
  };

  const assignee = view.assignee;
  const resolved = view.status === 'resolved';

  return (
    <div className="conversation">
      <header className="conv-header">
        <button type="button" className="ghost back" onClick={onBack}>
          ← <span className="sr">Back to the list</span>
        </button>
        <div className="conv-title">
          <h2>{people.name(view.customer)}</h2>
          <p className="muted">
            <span className={`badge status-${view.status}`}>{view.status}</span> {view.channel ?? ''}
            {view.handoffReason && view.status === 'pending' && <> · handed over: {HANDOFF_REASONS[view.handoffReason]}</>}
            {' · '}
            {assignee ? <>assigned to {people.name(assignee)}</> : 'unassigned'}
            {view.csat !== null && <> · CSAT {view.csat}/5</>}
          </p>
        </div>
        <div className="conv-actions">
          {assignee !== me.id && (
            <button type="button" disabled={busy || !loaded} onClick={() => void act(() => api.assign(id))}>
              Assign to me
            </button>
          )}
          {people.agents.length > 0 && (
            <label>
              <span className="sr">Assign to</span>
              <select value="" disabled={busy || !loaded} onChange={(e) => e.target.value && void act(() => api.assign(id, e.target.value))}>
                <option value="">Assign to…</option>
                {people.agents
                  .filter((a) => a.id !== assignee)
                  .map((a) => (
                    <option key={a.id} value={a.id}>
                      {people.name(a.id)}
                    </option>
                  ))}
              </select>
            </label>
          )}
          {assignee && !resolved && (
            <button type="button" disabled={busy || !loaded} onClick={() => void act(() => teamsApi.unassign(id))}>
              Unassign
            </button>
          )}
          {teamList.length > 0 && (
            <label>
              <span className="sr">Team</span>
              <select value={view.team ?? ''} disabled={busy || !loaded || resolved} onChange={(e) => void act(() => teamsApi.assign(id, e.target.value || null))}>
                <option value="">No team</option>
                {teamList.map((t) => (
                  <option key={t.id} value={t.id}>
                    {t.name}
                  </option>
                ))}
              </select>
            </label>
          )}
          {resolved ? (
            <button type="button" disabled={busy || !loaded} onClick={() => void act(() => api.reopen(id))}>
              Reopen
            </button>
          ) : (
            <button type="button" className="primary" disabled={busy || !loaded} onClick={() => void act(() => api.resolve(id))}>
              Resolve
            </button>
          )}
        </div>
      </header>

      <div className="tags" aria-label="Tags">
        {view.tags.map((t) => (
          <span key={t} className="tag-chip">
            #{t}
            <button type="button" aria-label={`Remove tag ${t}`} onClick={() => void act(() => api.tags(id, [], [t]))}>
              ×
            </button>
          </span>
        ))}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const t = newTag.trim();
            if (t) void act(() => api.tags(id, [t])).then(() => setNewTag(''));
          }}
        >
          <label>
            <span className="sr">Add a tag</span>
            <input placeholder="+ tag" value={newTag} maxLength={32} onChange={(e) => setNewTag(e.target.value)} size={10} />
          </label>
        </form>
      </div>

      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}

      <div className="thread" ref={list} role="log" aria-live="polite" aria-relevant="additions" aria-label="Messages" tabIndex={0}>
        {!loaded && !error && <p className="muted">Loading…</p>}
        {view.messages.map((m) => (
          <Line key={m.key} m={m} />
        ))}
        {customerTyping && <p className="typing">The customer is typing…</p>}
      </div>

      <form
        className="reply"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <label htmlFor="reply-text" className="sr">
          Reply
        </label>
        <textarea
          id="reply-text"
          rows={3}
          value={draft}
          maxLength={4000}
          placeholder={assignee && assignee !== me.id ? `Assigned to ${people.name(assignee)} — reply anyway…` : 'Write a reply… (Enter to send, Shift+Enter for a new line)'}
          onChange={(e) => {
            setDraft(e.target.value);
            typing(e.target.value.length > 0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <div className="reply-bar">
          <span className="muted small">{view.humanInvolved ? 'The bot stays silent: a human is handling this conversation.' : 'The bot is answering. Replying takes the conversation over.'}</span>
          <button type="submit" className="primary" disabled={!draft.trim()}>
            Send
          </button>
        </div>
      </form>
    </div>
  );

  function Line({ m }: { m: ChatMessage }) {
    if (m.role === 'system') {
      const text = m.notice === 'AgentAssigned' && m.agentId ? `Assigned to ${people.name(m.agentId)}` : m.text;
      const because = why(m.why);
      return (
        <>
          <p className="notice" data-notice={m.notice}>
            {text} <time>{time(m.at)}</time>
          </p>
          {because && (
            <p className="why muted small" data-testid="why">
              {because}
            </p>
          )}
        </>
      );
    }
    const who = m.role === 'customer' ? people.name(view.customer) : m.role === 'bot' ? 'Bot' : people.name(m.agentId);
    return (
      <div className={`line line-${m.role}`} data-role={m.role} data-state={m.state}>
        <div className="line-head">
          <strong>{who}</strong> <time>{time(m.at)}</time>
          {m.role === 'bot' && (
            <span className="bot-meta">
              {m.intent ? `intent ${m.intent}` : 'no intent'} · confidence {Math.round((m.confidence ?? 0) * 100)}%
              {m.helpful != null && (m.helpful ? ' · 👍 helpful' : ' · 👎 not helpful')}
            </span>
          )}
          {m.state === 'sending' && <span className="muted small"> · sending…</span>}
          {m.state === 'failed' && <span className="error small"> · not sent{m.failure ? `: ${m.failure}` : ''}</span>}
        </div>
        <div className="line-text">{m.text}</div>
        {m.role === 'bot' && m.sources && m.sources.length > 0 && (
          <ul className="sources">
            {m.sources.map((s) => (
              <li key={s.article_id}>
                <a href={`#/kb/${encodeURIComponent(s.article_id)}`}>{s.title}</a> {s.score !== undefined && <span className="muted small">score {s.score.toFixed(2)}</span>}
              </li>
            ))}
          </ul>
        )}
        {m.role === 'bot' && m.why && (
          <p className="why muted small" data-testid="why">
            {why(m.why)}
          </p>
        )}
      </div>
    );
  }
}
