/**
 * The "Canned replies" section of the settings page: the tenant's saved
 * replies, and a form to add one or edit one (shortcut, text with
 * placeholders). The server checks every rule; the form says at once which
 * placeholder it would refuse.
 */
import { useEffect, useState } from 'react';
import { type CannedReply, PLACEHOLDERS, canned, unknownPlaceholders } from '../canned';
import { ErrorLine, NoticeLine } from '../status';

const SHORTCUT = /^[a-z0-9_-]{1,32}$/;

export function CannedReplies() {
  const [items, setItems] = useState<CannedReply[] | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [shortcut, setShortcut] = useState('');
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const reload = (): Promise<void> =>
    canned
      .list()
      .then((l) => setItems(l.items))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not load the canned replies.'));
  useEffect(() => {
    void reload();
  }, []);

  const reset = (): void => {
    setEditing(null);
    setShortcut('');
    setText('');
  };

  const unknown = unknownPlaceholders(text);
  const shortcutOk = SHORTCUT.test(shortcut);
  const valid = shortcutOk && text.trim().length > 0 && unknown.length === 0;

  const save = (): void => {
    setError(null);
    const done = editing ? canned.change(editing, shortcut, text) : canned.add(shortcut, text);
    done
      .then((r) => {
        setNotice(editing ? `Saved /${r.shortcut}.` : `Added /${r.shortcut}.`);
        reset();
        return reload();
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not save the reply.'));
  };

  const remove = (r: CannedReply): void => {
    if (!window.confirm(`Remove the canned reply /${r.shortcut}?`)) return;
    setError(null);
    canned
      .remove(r.id)
      .then(() => {
        setNotice(`Removed /${r.shortcut}.`);
        if (editing === r.id) reset();
        return reload();
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not remove the reply.'));
  };

  return (
    <section className="card" aria-label="Canned replies">
      <h2>Canned replies</h2>
      <p>
        Saved answers your team inserts by typing <code>/</code> and the shortcut in the reply box. Placeholders are filled in before sending:{' '}
        {PLACEHOLDERS.map((p, i) => (
          <span key={p}>
            {i > 0 && ', '}
            <code>{`{{${p}}}`}</code>
          </span>
        ))}
        .
      </p>
      {items === null && !error && <p className="muted">Loading…</p>}
      {items?.length === 0 && <p className="muted">No canned replies yet.</p>}
      {items && items.length > 0 && (
        <ul className="canned-list" data-testid="canned-list">
          {items.map((r) => (
            <li key={r.id}>
              <strong>/{r.shortcut}</strong>
              <span className="canned-text">{r.text}</span>
              <button
                type="button"
                onClick={() => {
                  setEditing(r.id);
                  setShortcut(r.shortcut);
                  setText(r.text);
                  setNotice(null);
                }}
              >
                Edit<span className="sr"> /{r.shortcut}</span>
              </button>
              <button type="button" onClick={() => remove(r)}>
                Remove<span className="sr"> /{r.shortcut}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        aria-label={editing ? 'Edit the canned reply' : 'Add a canned reply'}
        onSubmit={(e) => {
          e.preventDefault();
          if (valid) save();
        }}
      >
        <h3>{editing ? 'Edit the reply' : 'Add a reply'}</h3>
        <label>
          Shortcut (lower-case letters, digits, - and _)
          <input value={shortcut} maxLength={32} onChange={(e) => setShortcut(e.target.value.toLowerCase())} placeholder="refund" />
        </label>
        {shortcut && !shortcutOk && <p className="error small">A shortcut has 1 to 32 lower-case letters, digits, - or _.</p>}
        <label>
          Text
          <textarea rows={4} value={text} maxLength={4000} onChange={(e) => setText(e.target.value)} placeholder="Hi {{customer.name}}, …" />
        </label>
        {unknown.length > 0 && (
          <p className="error small" role="alert">
            Unknown placeholder{unknown.length > 1 ? 's' : ''}: {unknown.map((u) => `{{${u}}}`).join(', ')}
          </p>
        )}
        <div className="row">
          <button type="submit" className="primary" disabled={!valid}>
            {editing ? 'Save reply' : 'Add reply'}
          </button>
          {editing && (
            <button type="button" onClick={reset}>
              Cancel
            </button>
          )}
        </div>
      </form>
      <ErrorLine error={error} />
      <NoticeLine notice={notice} />
    </section>
  );
}
