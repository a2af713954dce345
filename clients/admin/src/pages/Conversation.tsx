import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, type ChatMessage, type EventFrame, type PendingMessage, foldConversation, mergeEvents, HANDOFF_REASONS } from '@jamuna/protocol';
import { ACCEPTED_FILES, type Attachment, attachmentError, formatSize, isImage, newId, textOf } from '@jamuna/protocol';
import { api, files, socket } from '../client';
import { usePeople } from '../people';
import { teams as teamsApi, type Team } from '../teams';
import { time, why } from '../format';
import { useCannedPicker } from '../CannedPicker';
import { customerNameOf } from '../canned';
import { ContactPanel } from './ContactPanel';
import { loadContact, useCustomerNames } from '../contact';
import { NoteBox } from './NoteBox';
import { ErrorLine } from '../status';

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
  const [mode, setMode] = useState<'reply' | 'note'>('reply');
  const [teamList, setTeamList] = useState<Team[]>([]);
  useEffect(() => {
    teamsApi
      .list()
      .then((l) => setTeamList(l.teams))
      .catch(() => undefined);
  }, []);
  const list = useRef<HTMLDivElement>(null);
  const replyBox = useRef<HTMLTextAreaElement>(null);
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
  // {{customer.name}}: the name the customer gave (identified, or the pre-chat form), else their account's.
  const [givenName, setGivenName] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    setGivenName(null);
    if (view.customer) {
      loadContact(view.customer)
        .then((c) => alive && setGivenName(c.erased ? null : c.name?.trim() || null))
        .catch(() => undefined);
    }
    return () => {
      alive = false;
    };
  }, [view.customer]);
  const customerName = givenName ?? customerNameOf(view.customer, people.users);
  // The header and the customer's lines: the contact's display name (an identified customer's own), once loaded.
  const contactNames = useCustomerNames(view.customer ? [view.customer] : []);
  const customerLabel = (view.customer && contactNames.get(view.customer)) || people.name(view.customer);
  const picker = useCannedPicker(replyBox, setDraft, { 'customer.name': customerName, 'agent.name': me.name, 'conversation.id': id });

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

  const fileInput = useRef<HTMLInputElement>(null);
  const [uploading, setUploading] = useState(false);
  // Uploads the file and posts it, with the draft as its text.
  const attach = async (file: File | undefined): Promise<void> => {
    if (!file) return;
    setUploading(true);
    setError(null);
    try {
      if (!view.assignee) await api.assign(id).catch(() => undefined);
      const up = await api.uploadAttachment(id, file, file.name || 'file');
      await api.postMessage(id, newId(), draft.trim(), [up.id]);
      setDraft('');
    } catch (e) {
      setError(attachmentError(e));
    } finally {
      setUploading(false);
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
          <h2 data-testid="customer-name">{customerLabel}</h2>
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

      {view.customer && <ContactPanel customerId={view.customer} conversationId={id} />}

      <ErrorLine error={error} />

      <div className="thread" ref={list} role="log" aria-live="polite" aria-relevant="additions" aria-label="Messages" tabIndex={0}>
        {!loaded && !error && <p className="muted">Loading…</p>}
        {view.messages.map((m) => (
          <Line key={m.key} m={m} />
        ))}
        {customerTyping && <p className="typing">The customer is typing…</p>}
      </div>

      <div className="reply-mode" role="tablist" aria-label="Write as">
        <button type="button" role="tab" aria-selected={mode === 'reply'} className={mode === 'reply' ? 'active' : ''} onClick={() => setMode('reply')}>
          Reply
        </button>
        <button type="button" role="tab" aria-selected={mode === 'note'} className={mode === 'note' ? 'active' : ''} onClick={() => setMode('note')}>
          Note
        </button>
      </div>
      {mode === 'note' && <NoteBox id={id} agents={people.agents} onError={setError} />}
      <form
        className="reply"
        hidden={mode !== 'reply'}
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <label htmlFor="reply-text" className="sr">
          Reply
        </label>
        {picker.element}
        <textarea
          id="reply-text"
          ref={replyBox}
          {...picker.inputProps}
          rows={3}
          value={draft}
          maxLength={4000}
          placeholder={assignee && assignee !== me.id ? `Assigned to ${people.name(assignee)} — reply anyway…` : 'Write a reply… (Enter to send, Shift+Enter for a new line)'}
          onChange={(e) => {
            setDraft(e.target.value);
            typing(e.target.value.length > 0);
            picker.onChange(e.target.value, e.target.selectionStart);
          }}
          onKeyDown={(e) => {
            if (picker.onKeyDown(e)) return;
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <div className="reply-bar">
          <span className="muted small">{view.humanInvolved ? 'The bot stays silent: a human is handling this conversation.' : 'The bot is answering. Replying takes the conversation over.'}</span>
          <span className="reply-actions">
            <input
              ref={fileInput}
              type="file"
              className="sr"
              accept={ACCEPTED_FILES}
              aria-label="Attach a file"
              data-testid="attach-input"
              tabIndex={-1}
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = '';
                void attach(file);
              }}
            />
            <button type="button" disabled={uploading} onClick={() => fileInput.current?.click()} title="Attach an image, a PDF or a text file (sent with the text above)">
              {uploading ? 'Sending file…' : <><ClipIcon /> Attach file</>}
            </button>
            <button type="submit" className="primary" disabled={!draft.trim()}>
              Send
            </button>
          </span>
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
    const who = m.role === 'customer' ? customerLabel : m.role === 'bot' ? 'Bot' : people.name(m.agentId);
    return (
      <div className={`line line-${m.role}`} data-role={m.role} data-state={m.state}>
        <div className="line-head">
          {m.role === 'note' && <span className="note-label">Private note</span>} <strong>{who}</strong> <time>{time(m.at)}</time>
          {m.role === 'bot' && (
            <span className="bot-meta">
              {m.intent ? `intent ${m.intent}` : 'no intent'} · confidence {Math.round((m.confidence ?? 0) * 100)}%
              {m.helpful != null && (m.helpful ? ' · 👍 helpful' : ' · 👎 not helpful')}
            </span>
          )}
          {m.state === 'sending' && <span className="muted small"> · sending…</span>}
          {m.state === 'failed' && <span className="error small"> · not sent{m.failure ? `: ${m.failure}` : ''}</span>}
        </div>
        {m.text && <div className="line-text">{m.text}</div>}
        {m.attachments && m.attachments.length > 0 && (
          <div className="files">
            {m.attachments.map((a) => (
              <FileItem key={a.id} conversation={id} a={a} />
            ))}
          </div>
        )}
        {m.role === 'note' && m.mentions && m.mentions.length > 0 && <p className="muted small note-mentions">Mentions {m.mentions.map((u) => `@${people.name(u)}`).join(', ')}</p>}
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

/** One attachment: an image as a thumbnail (opens full size), any other file as a download with its name and size. */
function FileItem({ conversation, a }: { conversation: string; a: Attachment }) {
  const name = textOf(a.name);
  const image = isImage(a.content_type);
  const [url, setUrl] = useState<string | null>(null);
  const [gone, setGone] = useState(false);
  useEffect(() => {
    if (!image) return;
    let live = true;
    files.url(conversation, a.id).then(
      (u) => live && setUrl(u),
      () => live && setGone(true),
    );
    return () => {
      live = false;
    };
  }, [conversation, a.id, image]);
  if (gone) return <span className="file file-gone muted">{name} · no longer available</span>;
  if (image) {
    return url ? (
      <a href={url} target="_blank" rel="noopener noreferrer" className="thumb-link">
        <img className="thumb" src={url} alt={name} data-attachment={a.id} />
      </a>
    ) : (
      <span className="file muted">Loading {name}…</span>
    );
  }
  return (
    <button type="button" className="file" data-attachment={a.id} onClick={() => void files.save(conversation, a.id, name).catch(() => setGone(true))}>
      <ClipIcon /> {name} <span className="muted small">{formatSize(a.size)}</span>
    </button>
  );
}

function ClipIcon() {
  return (
    <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false" style={{ verticalAlign: 'text-bottom' }}>
      <path fill="currentColor" d="M16.5 6.5v10.6a4.5 4.5 0 0 1-9 0V5.5a3 3 0 0 1 6 0v10.1a1.5 1.5 0 0 1-3 0V6.5H9v9.1a3 3 0 0 0 6 0V5.5a4.5 4.5 0 0 0-9 0v11.6a6 6 0 0 0 12 0V6.5z" />
    </svg>
  );
}
