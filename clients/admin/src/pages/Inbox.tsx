import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { type Channel, type ConversationSummary, type InboxView, type Status, textOf } from '@jamuna/protocol';
import { api, socket, storage } from '../client';
import { go, href } from '../router';
import { ago } from '../format';
import { usePeople } from '../people';
import { useCustomerNames } from '../contact';
import { ConversationPane } from './Conversation';
import { MentionsList } from './Mentions';
import { teams as teamsApi, type TeamList } from '../teams';

const VIEWS: { id: InboxView; label: string }[] = [
  { id: 'unassigned', label: 'Unassigned' },
  { id: 'mine', label: 'Mine' },
  { id: 'pending', label: 'Waiting for a human' },
  { id: 'resolved', label: 'Resolved' },
  { id: 'all', label: 'All' },
];

const READ_KEY = 'jamuna.admin.read';

function readMarks(): Record<string, number> {
  try {
    return JSON.parse(storage.getItem(READ_KEY) ?? '{}') as Record<string, number>;
  } catch {
    return {};
  }
}

function authorKind(a: unknown): string {
  if (typeof a === 'string') return a;
  if (a && typeof a === 'object' && 'kind' in a) return String((a as { kind: unknown }).kind);
  return '';
}

/** Calls `fn` at most once per `ms`, trailing. */
function useDebounced(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  }, [ms]);
}

export function Inbox({ view: viewParam, conversationId }: { view?: string; conversationId?: string }) {
  const view: InboxView = VIEWS.some((v) => v.id === viewParam) ? (viewParam as InboxView) : 'unassigned';
  // The "Mentions" view lists the notes that name me instead of conversations.
  const mentions = viewParam === 'mentions';
  const people = usePeople();
  const [items, setItems] = useState<ConversationSummary[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [counts, setCounts] = useState<Partial<Record<InboxView, string>>>({});
  const [status, setStatus] = useState<Status | ''>('');
  const [channel, setChannel] = useState<Channel | ''>('');
  const [tag, setTag] = useState('');
  const [team, setTeam] = useState('');
  const [teamList, setTeamList] = useState<TeamList | null>(null);
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [unread, setUnread] = useState<Record<string, number>>({});
  const [marks, setMarks] = useState<Record<string, number>>(readMarks);
  const openRef = useRef(conversationId);
  openRef.current = conversationId;
  // Identified customers by the name they gave: each contact asked once per session, not per row or render.
  const customerNames = useCustomerNames(items.map((c) => c.customer));

  // Search as you type, without a request per key.
  useEffect(() => {
    const t = setTimeout(() => setQuery(q.trim()), 300);
    return () => clearTimeout(t);
  }, [q]);

  const filters = useMemo(
    () => ({ view, status: status || undefined, channel: channel || undefined, tag: tag.trim() || undefined, team: team || undefined, q: query || undefined }),
    [view, status, channel, tag, team, query],
  );

  const load = useCallback(() => {
    const ctl = new AbortController();
    api
      .conversations({ ...filters, limit: 50 }, ctl.signal)
      .then((page) => {
        setItems(page.items);
        setNextCursor(page.next_cursor ?? null);
        setError(null);
      })
      .catch((e: unknown) => {
        if (!(e instanceof DOMException)) setError(e instanceof Error ? e.message : 'Could not load the inbox.');
      })
      .finally(() => setLoading(false));
    return ctl;
  }, [filters]);

  const loadCounts = useCallback(() => {
    teamsApi
      .list()
      .then(setTeamList)
      .catch(() => undefined);
    for (const v of VIEWS) {
      if (v.id === 'all' || v.id === 'resolved') continue;
      api
        .conversations({ view: v.id, limit: 100 })
        .then((p) => setCounts((c) => ({ ...c, [v.id]: p.next_cursor ? '100+' : String(p.items.length) })))
        .catch(() => undefined);
    }
  }, []);

  useEffect(() => {
    setLoading(true);
    const ctl = load();
    return () => ctl.abort();
  }, [load]);
  useEffect(loadCounts, [loadCounts]);

  const refresh = useDebounced(() => {
    load();
    loadCounts();
  }, 250);

  // Live: any event of the tenant refreshes the list; customer messages count as unread.
  useEffect(() => {
    const s = socket();
    const offs = [
      s.on('event', (f) => {
        const e = f.event;
        if (f.conversation_id !== openRef.current && e.type === 'MessagePosted' && e.author.kind === 'customer') {
          setUnread((u) => ({ ...u, [f.conversation_id]: (u[f.conversation_id] ?? 0) + 1 }));
        }
        refresh();
      }),
      s.on('status', (st) => {
        if (st === 'open') refresh();
      }),
    ];
    return () => offs.forEach((o) => o());
  }, [refresh]);

  const markRead = useCallback((id: string, version: number) => {
    setUnread((u) => (u[id] ? { ...u, [id]: 0 } : u));
    setMarks((m) => {
      if ((m[id] ?? 0) >= version) return m;
      const next = { ...m, [id]: version };
      storage.setItem(READ_KEY, JSON.stringify(next));
      return next;
    });
  }, []);

  const unreadOf = (c: ConversationSummary): number => {
    if (c.id === conversationId) return 0;
    const live = unread[c.id] ?? 0;
    const stale = authorKind(c.last_message?.author) === 'customer' && c.version > (marks[c.id] ?? 0) ? 1 : 0;
    return Math.max(live, stale);
  };

  const more = (): void => {
    if (!nextCursor) return;
    api
      .conversations({ ...filters, limit: 50, cursor: nextCursor })
      .then((p) => {
        setItems((old) => [...old, ...p.items.filter((i) => !old.some((o) => o.id === i.id))]);
        setNextCursor(p.next_cursor ?? null);
      })
      .catch(() => undefined);
  };

  return (
    <div className={`inbox ${conversationId ? 'has-open' : ''}`}>
      <section className="inbox-list" aria-label="Conversations">
        <div className="views" role="tablist" aria-label="Views">
          {VIEWS.map((v) => (
            <a key={v.id} role="tab" aria-selected={v.id === view && !mentions} className={v.id === view && !mentions ? 'active' : ''} href={href('inbox', v.id)}>
              {v.label}
              {counts[v.id] !== undefined && <span className="count">{counts[v.id]}</span>}
            </a>
          ))}
          <a role="tab" aria-selected={mentions} className={mentions ? 'active' : ''} href={href('inbox', 'mentions')}>
            Mentions
          </a>
        </div>
        {mentions && <MentionsList current={conversationId} />}
        <div className="filters" hidden={mentions}>
          <label className="search">
            <span className="sr">Search conversations</span>
            <input type="search" placeholder="Search messages…" value={q} onChange={(e) => setQ(e.target.value)} />
          </label>
          <label>
            <span className="sr">Status</span>
            <select value={status} onChange={(e) => setStatus(e.target.value as Status | '')}>
              <option value="">Any status</option>
              <option value="open">Open</option>
              <option value="pending">Pending</option>
              <option value="resolved">Resolved</option>
            </select>
          </label>
          <label>
            <span className="sr">Channel</span>
            <select value={channel} onChange={(e) => setChannel(e.target.value as Channel | '')}>
              <option value="">Any channel</option>
              <option value="web">Web</option>
              <option value="mobile">Mobile</option>
              <option value="api">API</option>
            </select>
          </label>
          <label>
            <span className="sr">Tag</span>
            <input placeholder="Tag" value={tag} onChange={(e) => setTag(e.target.value)} size={8} />
          </label>
          {teamList && teamList.teams.length > 0 && (
            <label>
              <span className="sr">Team</span>
              <select value={team} onChange={(e) => setTeam(e.target.value)}>
                <option value="">Any team</option>
                {teamList.teams.map((t) => (
                  <option key={t.id} value={t.id}>
                    {t.name}
                  </option>
                ))}
              </select>
            </label>
          )}
        </div>
        {teamList && teamList.teams.length > 0 && (
          <p className="small muted waiting-per-team" data-testid="waiting-per-team">
            Waiting for a human:{' '}
            {teamList.teams.map((t) => (
              <span key={t.id} className="badge" data-team={t.id}>
                {t.name} {t.waiting}
              </span>
            ))}{' '}
            <span className="badge">no team {teamList.waiting_without_team}</span>
          </p>
        )}
        {error && !mentions && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <ul className="conversations" aria-busy={loading} hidden={mentions}>
          {items.map((c) => {
            const n = unreadOf(c);
            const last = c.last_message;
            return (
              <li key={c.id}>
                <a href={href('inbox', view, c.id)} className={`conv ${c.id === conversationId ? 'active' : ''} ${n ? 'unread' : ''}`} aria-current={c.id === conversationId ? 'true' : undefined} data-conversation={c.id}>
                  <span className="conv-top">
                    <span className="who">{customerNames.get(c.customer) ?? people.name(c.customer)}</span>
                    <span className="when">{ago(c.updated_at)}</span>
                  </span>
                  <span className="conv-text">
                    {last ? `${authorKind(last.author) === 'customer' ? '' : authorKind(last.author) === 'bot' ? 'Bot: ' : 'Agent: '}${textOf(last.text)}` : 'No messages yet'}
                  </span>
                  <span className="conv-meta">
                    <span className={`badge status-${c.status}`}>{c.status}</span>
                    {c.handoff_reason && c.status === 'pending' && <span className="badge handoff">needs a human</span>}
                    <span className="badge">{c.channel}</span>
                    {c.assignee && <span className="badge assignee">{people.name(c.assignee)}</span>}
                    {(c.tags ?? []).map((t) => (
                      <span key={t} className="badge tag">
                        #{t}
                      </span>
                    ))}
                    {n > 0 && (
                      <span className="unread-count" aria-label={`${n} unread`}>
                        {n}
                      </span>
                    )}
                  </span>
                </a>
              </li>
            );
          })}
          {!loading && items.length === 0 && <li className="empty">No conversations here. New ones appear live.</li>}
        </ul>
        {nextCursor && !mentions && (
          <button type="button" className="ghost more" onClick={more}>
            Load more
          </button>
        )}
      </section>
      <section className="inbox-detail" aria-label="Conversation">
        {conversationId ? (
          <ConversationPane key={conversationId} id={conversationId} onBack={() => go('inbox', mentions ? 'mentions' : view)} onSeen={markRead} />
        ) : (
          <div className="placeholder">
            <p>Select a conversation.</p>
          </div>
        )}
      </section>
    </div>
  );
}
