import { useCallback, useEffect, useId, useRef, useState } from 'react';
import { ACCEPTED_FILES, type Attachment, type ChatMessage, formatSize, type Identity, isImage, textOf } from '@jamuna/protocol';
import type { WidgetConfig } from './config';
import { useChat } from './useChat';

export interface Controls {
  open: () => void;
  close: () => void;
  toggle: () => void;
  /** `Jamuna.identify({ id, name, email, attributes, signature })`. */
  identify: (identity: Identity) => Promise<boolean>;
  /** An identity given before the widget was mounted. */
  pending?: Identity;
}

export function Widget({ config, controls }: { config: WidgetConfig; controls?: Controls }) {
  const chat = useChat(config);
  const [open, setOpen] = useState(config.open);
  const [unread, setUnread] = useState(0);
  const launcher = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  const seenCount = useRef(0);

  const show = useCallback(() => {
    setOpen(true);
    chat.start();
  }, [chat]);
  const hide = useCallback(() => {
    setOpen(false);
    launcher.current?.focus();
  }, []);

  if (controls) {
    controls.open = show;
    controls.close = hide;
    controls.toggle = () => (open ? hide() : show());
    controls.identify = chat.identify;
  }
  // An identity the host page gave before the widget was mounted.
  const identifyNow = chat.identify;
  useEffect(() => {
    const pending = controls?.pending;
    if (!pending || !controls) return;
    controls.pending = undefined;
    void identifyNow(pending);
  }, [controls, identifyNow]);

  // Unread replies while the panel is closed.
  const replies = chat.view?.messages.filter((m) => m.role === 'bot' || m.role === 'agent').length ?? 0;
  useEffect(() => {
    if (open) {
      seenCount.current = replies;
      setUnread(0);
    } else if (replies > seenCount.current) {
      setUnread(replies - seenCount.current);
    }
  }, [open, replies]);

  return (
    <div className={`jw ${open ? 'jw-open' : ''}`}>
      {open && <Panel id={panelId} config={config} chat={chat} onClose={hide} />}
      <button
        ref={launcher}
        type="button"
        className="jw-launcher"
        aria-label={open ? 'Close chat' : unread ? `Open chat, ${unread} unread ${unread === 1 ? 'reply' : 'replies'}` : 'Open chat'}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => (open ? hide() : show())}
      >
        {open ? <CloseIcon /> : <ChatIcon />}
        {!open && unread > 0 && (
          <span className="jw-badge" aria-hidden="true">
            {unread}
          </span>
        )}
      </button>
    </div>
  );
}

function Panel({ id, config, chat, onClose }: { id: string; config: WidgetConfig; chat: ReturnType<typeof useChat>; onClose: () => void }) {
  const [draft, setDraft] = useState('');
  const input = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const [uploading, setUploading] = useState(false);
  const list = useRef<HTMLDivElement>(null);
  const view = chat.view;
  const messages = view?.messages ?? [];
  const agentJoined = (view?.agents.length ?? 0) > 0;
  const lastAgent = view?.assignee ?? view?.agents[view.agents.length - 1];
  const agentName = (lastAgent && chat.agentNames[lastAgent]) || null;
  const resolved = view?.status === 'resolved';
  // The tenant's pre-chat form comes before the first message.
  const prechatShown = chat.needsDetails && messages.length === 0;

  useEffect(() => {
    input.current?.focus();
  }, []);

  // Keep the newest message in sight.
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages.length, chat.agentTyping]);

  const onFile = async (file: File | undefined): Promise<void> => {
    if (!file) return;
    setUploading(true);
    const ok = await chat.attach(file, draft);
    if (ok) setDraft('');
    setUploading(false);
    input.current?.focus();
  };

  const submit = async (): Promise<void> => {
    const text = draft;
    if (!text.trim()) return;
    setDraft('');
    chat.typing(false);
    const ok = await chat.send(text);
    if (!ok) setDraft(text);
    input.current?.focus();
  };

  const statusLine =
    chat.status === 'offline'
      ? 'You are offline. Messages will be sent when you are back.'
      : chat.interrupted
        ? 'Reconnecting…'
        : agentJoined
          ? agentName
            ? `${agentName} from the team has joined`
            : 'An agent from the team has joined'
          : config.subtitle;

  return (
    <section
      id={id}
      className="jw-panel"
      role="dialog"
      aria-modal="false"
      aria-label={`Chat with ${config.title}`}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          onClose();
        }
      }}
    >
      <header className="jw-header">
        <div className="jw-avatar" aria-hidden="true">
          {agentJoined ? (agentName ?? 'A').slice(0, 1).toUpperCase() : config.title.slice(0, 1).toUpperCase()}
        </div>
        <div className="jw-heading">
          <h2>{config.title}</h2>
          <p className={`jw-status jw-status-${chat.status}`} data-testid="jw-status">
            {statusLine}
          </p>
        </div>
        <button type="button" className="jw-icon-button" aria-label="Close chat" onClick={onClose}>
          <CloseIcon />
        </button>
      </header>

      <div className="jw-messages" ref={list} role="log" aria-live="polite" aria-relevant="additions" aria-label="Messages" tabIndex={0}>
        <div className="jw-welcome">
          <p>
            <strong>Hi there!</strong>
          </p>
          <p>Ask us anything. Our assistant answers right away from our help articles, and a person from the team is one click away.</p>
        </div>
        {messages.map((m) => (
          <Message key={m.key} m={m} config={config} chat={chat} />
        ))}
        {chat.agentTyping && (
          <div className="jw-typing" aria-label="The agent is typing">
            <span />
            <span />
            <span />
          </div>
        )}
        {resolved && view && view.csat === null && <Csat onRate={chat.rateConversation} />}
        {resolved && view && view.csat !== null && <p className="jw-notice">Thanks for your rating!</p>}
      </div>

      {chat.error && (
        <p className="jw-error" role="alert">
          {chat.error}
        </p>
      )}

      <div className="jw-actions">
        {!view?.humanInvolved && (
          <button type="button" className="jw-chip" onClick={() => void chat.askHuman()} disabled={!chat.ready}>
            Talk to a human
          </button>
        )}
        {resolved && (
          <button type="button" className="jw-chip" onClick={() => void chat.newConversation()}>
            Start a new conversation
          </button>
        )}
      </div>

      {prechatShown && <Prechat required={chat.prechat === 'required'} onGive={chat.giveDetails} onSkip={chat.skipDetails} />}
      <form
        className="jw-composer"
        hidden={prechatShown}
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label className="jw-sr" htmlFor={`${id}-input`}>
          Your message
        </label>
        <input
          ref={fileInput}
          type="file"
          className="jw-sr"
          accept={ACCEPTED_FILES}
          aria-label="Attach a file"
          data-testid="jw-file"
          tabIndex={-1}
          onChange={(e) => {
            const file = e.target.files?.[0];
            e.target.value = '';
            void onFile(file);
          }}
        />
        <button type="button" className="jw-attach" aria-label="Attach a file" title="Attach a file" disabled={!chat.ready || uploading} onClick={() => fileInput.current?.click()}>
          {uploading ? '…' : <ClipIcon />}
        </button>
        <textarea
          id={`${id}-input`}
          ref={input}
          rows={1}
          value={draft}
          maxLength={4000}
          placeholder={chat.ready ? 'Write a message…' : 'Connecting…'}
          onChange={(e) => {
            setDraft(e.target.value);
            chat.typing(e.target.value.length > 0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              void submit();
            }
          }}
        />
        <button type="submit" className="jw-send" aria-label="Send" disabled={!chat.ready || !draft.trim()}>
          <SendIcon />
        </button>
      </form>
      <p className="jw-footer">Powered by Jamuna</p>
    </section>
  );
}

function Message({ m, config, chat }: { m: ChatMessage; config: WidgetConfig; chat: ReturnType<typeof useChat> }) {
  if (m.role === 'system') {
    if (m.notice === 'FeedbackGiven') return null;
    const name = m.agentId ? chat.agentNames[m.agentId] : '';
    const text = m.notice === 'AgentAssigned' ? `${name || 'An agent'} joined the conversation` : m.notice === 'HandoffRequested' ? 'We are getting a person from the team to help you.' : m.text;
    return (
      <p className="jw-notice" data-notice={m.notice}>
        {text}
      </p>
    );
  }
  const mine = m.role === 'customer';
  const who = mine ? 'You' : m.role === 'bot' ? 'Assistant' : (m.agentId && chat.agentNames[m.agentId]) || 'Agent';
  return (
    <div className={`jw-msg jw-msg-${m.role}`} data-role={m.role} data-state={m.state} data-version={m.version ?? undefined}>
      {!mine && <span className="jw-author">{who}</span>}
      <span className="jw-sr">{who} said: </span>
      {m.text && <div className="jw-bubble">{m.text}</div>}
      {m.attachments && m.attachments.length > 0 && (
        <div className="jw-files">
          {m.attachments.map((a) => (
            <FileItem key={a.id} a={a} chat={chat} />
          ))}
        </div>
      )}
      {m.role === 'bot' && m.sources && m.sources.length > 0 && (
        <div className="jw-sources" aria-label="Sources">
          <span className="jw-sources-title">Sources</span>
          <ul>
            {m.sources.map((s) => (
              <li key={s.article_id} data-article={s.article_id}>
                {config.articleUrl ? (
                  <a href={config.articleUrl.replace('{id}', encodeURIComponent(s.article_id))} target="_blank" rel="noreferrer">
                    {s.title}
                  </a>
                ) : (
                  <details>
                    <summary>{s.title}</summary>
                    <p>{s.passage}</p>
                  </details>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
      {m.role === 'bot' && m.version !== null && (
        <div className="jw-helpful" role="group" aria-label="Was this answer helpful?">
          {m.helpful == null ? (
            <>
              <span>Did this help?</span>
              <button type="button" onClick={() => void chat.rateAnswer(m.version ?? 0, true)}>
                Yes<span className="jw-sr">, this helped</span>
              </button>
              <button type="button" onClick={() => void chat.rateAnswer(m.version ?? 0, false)}>
                No<span className="jw-sr">, this didn't help</span>
              </button>
            </>
          ) : (
            <span>{m.helpful ? 'Glad it helped!' : 'Sorry about that. You can ask for a person below.'}</span>
          )}
        </div>
      )}
      {mine && (
        <span className="jw-delivery" aria-live="off">
          {m.state === 'sending' && 'Sending…'}
          {m.state === 'sent' && 'Sent'}
          {m.state === 'failed' && (
            <>
              Not sent{m.failure ? `: ${m.failure}` : ''}.{' '}
              <button type="button" className="jw-link" onClick={() => m.clientMessageId && chat.retry(m.clientMessageId)}>
                Retry
              </button>{' '}
              <button type="button" className="jw-link" onClick={() => m.clientMessageId && chat.discard(m.clientMessageId)}>
                Delete
              </button>
            </>
          )}
        </span>
      )}
    </div>
  );
}

/** The tenant's pre-chat form: name and e-mail before the first message. */
function Prechat({ required, onGive, onSkip }: { required: boolean; onGive: (name: string, email: string) => Promise<boolean>; onSkip: () => void }) {
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  return (
    <form
      className="jw-prechat"
      aria-label="Before we start"
      onSubmit={(e) => {
        e.preventDefault();
        void onGive(name, email);
      }}
    >
      <p>Before we start, how can we reach you?</p>
      <label>
        Your name
        <input value={name} maxLength={200} required autoComplete="name" onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Your e-mail address
        <input type="email" value={email} maxLength={254} required autoComplete="email" onChange={(e) => setEmail(e.target.value)} />
      </label>
      <div className="jw-prechat-actions">
        <button type="submit" className="jw-primary" disabled={!name.trim() || !email.trim()}>
          Start chatting
        </button>
        {!required && (
          <button type="button" className="jw-link" onClick={onSkip}>
            Skip
          </button>
        )}
      </div>
    </form>
  );
}

function Csat({ onRate }: { onRate: (score: number, comment: string) => Promise<void> }) {
  const [score, setScore] = useState<number | null>(null);
  const [comment, setComment] = useState('');
  const labels = ['Terrible', 'Bad', 'OK', 'Good', 'Great'];
  return (
    <form
      className="jw-csat"
      aria-label="Rate this conversation"
      onSubmit={(e) => {
        e.preventDefault();
        if (score) void onRate(score, comment);
      }}
    >
      <p>How was your conversation?</p>
      <div className="jw-stars" role="radiogroup" aria-label="Rating">
        {[1, 2, 3, 4, 5].map((n) => (
          <button key={n} type="button" role="radio" aria-checked={score === n} aria-label={`${n} of 5: ${labels[n - 1]}`} className={score !== null && n <= score ? 'on' : ''} onClick={() => setScore(n)}>
            ★
          </button>
        ))}
      </div>
      {score !== null && (
        <>
          <label className="jw-sr" htmlFor="jw-csat-comment">
            Comment (optional)
          </label>
          <input id="jw-csat-comment" value={comment} maxLength={1000} placeholder="Anything to add? (optional)" onChange={(e) => setComment(e.target.value)} />
          <button type="submit" className="jw-primary">
            Send rating
          </button>
        </>
      )}
    </form>
  );
}

const ChatIcon = () => (
  <svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true">
    <path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z" />
  </svg>
);
const CloseIcon = () => (
  <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
    <path fill="none" stroke="currentColor" strokeWidth="2.4" strokeLinecap="round" d="M6 6l12 12M18 6L6 18" />
  </svg>
);
const SendIcon = () => (
  <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
    <path fill="currentColor" d="M3 20l18-8L3 4v6l12 2-12 2z" />
  </svg>
);

/** One attachment: an image inline, any other file as a download with its name and size. */
function FileItem({ a, chat }: { a: Attachment; chat: ReturnType<typeof useChat> }) {
  const name = textOf(a.name);
  const image = isImage(a.content_type);
  const [url, setUrl] = useState<string | null>(null);
  const [gone, setGone] = useState(false);
  const { fileUrl } = chat;
  useEffect(() => {
    if (!image) return;
    let live = true;
    fileUrl(a.id).then(
      (u) => live && setUrl(u),
      () => live && setGone(true),
    );
    return () => {
      live = false;
    };
  }, [a.id, image, fileUrl]);
  if (gone) return <span className="jw-file jw-file-gone">{name} (no longer available)</span>;
  if (image) {
    return url ? <img className="jw-thumb" src={url} alt={name} data-attachment={a.id} /> : <span className="jw-file">Loading {name}…</span>;
  }
  return (
    <button type="button" className="jw-file" data-attachment={a.id} onClick={() => void chat.saveFile(a.id, name).catch(() => setGone(true))}>
      <ClipIcon /> <span className="jw-file-name">{name}</span> <span className="jw-file-size">{formatSize(a.size)}</span>
    </button>
  );
}

function ClipIcon() {
  return (
    <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">
      <path fill="currentColor" d="M16.5 6.5v10.6a4.5 4.5 0 0 1-9 0V5.5a3 3 0 0 1 6 0v10.1a1.5 1.5 0 0 1-3 0V6.5H9v9.1a3 3 0 0 0 6 0V5.5a4.5 4.5 0 0 0-9 0v11.6a6 6 0 0 0 12 0V6.5z" />
    </svg>
  );
}
