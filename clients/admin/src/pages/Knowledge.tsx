import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, type Article, type ImportResult } from '@jamuna/protocol';
import { api } from '../client';
import { ago } from '../format';
import { Examples } from './Examples';
import { Gaps } from './Gaps';
import { ErrorLine } from '../status';

type Editing = { id?: string; title: string; body: string } | null;

export function Knowledge({ canEdit }: { canEdit: boolean }) {
  const [articles, setArticles] = useState<Article[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [editing, setEditing] = useState<Editing>(null);
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<'cited' | 'title' | 'updated'>('cited');
  const [tab, setTab] = useState<'articles' | 'gaps' | 'examples'>('articles');
  const file = useRef<HTMLInputElement>(null);

  const load = useCallback(() => {
    api
      .articles()
      .then((p) => {
        setArticles(p.items);
        setError(null);
      })
      .catch((e: unknown) => setError(e instanceof ApiError && e.status === 404 ? 'The knowledge-base API is not available on this server yet.' : e instanceof Error ? e.message : 'Could not load articles.'));
  }, []);
  useEffect(load, [load]);

  const save = async (): Promise<void> => {
    if (!editing) return;
    try {
      if (editing.id) await api.updateArticle(editing.id, { title: editing.title, body: editing.body });
      else await api.addArticle({ title: editing.title, body: editing.body });
      setNotice(editing.id ? 'Article saved.' : 'Article added.');
      setEditing(null);
      load();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Could not save.');
    }
  };

  const remove = async (a: Article): Promise<void> => {
    if (!window.confirm(`Remove “${a.title}”? The bot will stop using it.`)) return;
    try {
      await api.removeArticle(a.id);
      setNotice('Article removed.');
      load();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'Could not remove.');
    }
  };

  const importFile = async (f: File): Promise<void> => {
    const name = f.name.toLowerCase();
    const type = name.endsWith('.csv') ? 'text/csv' : name.endsWith('.json') ? 'application/json' : 'text/markdown';
    try {
      const r: ImportResult = await api.importArticles(await f.text(), type);
      setNotice(`Imported ${f.name}: ${r.added} added, ${r.updated} updated, ${r.unchanged} unchanged.`);
      load();
    } catch (e) {
      setError(e instanceof Error ? `Import failed: ${e.message}` : 'Import failed.');
    }
  };

  const shown = articles
    .filter((a) => !filter || `${a.title} ${a.body}`.toLowerCase().includes(filter.toLowerCase()))
    .sort((a, b) => (sort === 'cited' ? (b.citations ?? 0) - (a.citations ?? 0) || a.title.localeCompare(b.title) : sort === 'title' ? a.title.localeCompare(b.title) : (b.updated_at ?? '').localeCompare(a.updated_at ?? '')));
  const maxCited = Math.max(1, ...articles.map((a) => a.citations ?? 0));
  const counted = articles.some((a) => a.citations !== undefined);

  return (
    <div className="page">
      <header className="page-head">
        <h1>Knowledge base</h1>
        {canEdit && (
          <div className="row">
            <button type="button" className="primary" onClick={() => setEditing({ title: '', body: '' })}>
              New article
            </button>
            <button type="button" onClick={() => file.current?.click()}>
              Import a file…
            </button>
            <input
              ref={file}
              type="file"
              accept=".md,.markdown,.csv,.json,text/markdown,text/csv,application/json"
              hidden
              aria-label="Import a Markdown, CSV or JSON file"
              onChange={(e) => {
                const f = e.target.files?.[0];
                if (f) void importFile(f);
                e.target.value = '';
              }}
            />
          </div>
        )}
      </header>
      <p className="muted">The bot answers from these articles. Import Markdown (one article per <code># heading</code>), CSV (<code>title,body</code>) or JSON.</p>
      {canEdit && (
        <div className="views" role="tablist" aria-label="Knowledge">
          {(['articles', 'gaps', 'examples'] as const).map((t) => (
            <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? 'active' : ''} onClick={() => setTab(t)}>
              {t === 'articles' ? 'Articles' : t === 'gaps' ? 'Gaps' : 'Examples'}
            </button>
          ))}
        </div>
      )}
      <div aria-live="polite">
        {notice && <p className="notice-ok">{notice}</p>}
      </div>
      <ErrorLine error={error} />
      {editing && (
        <form
          className="card editor"
          aria-label={editing.id ? 'Edit article' : 'New article'}
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <label>
            Title
            <input value={editing.title} required maxLength={200} autoFocus onChange={(e) => setEditing({ ...editing, title: e.target.value })} />
          </label>
          <label>
            Body
            <textarea value={editing.body} required rows={8} onChange={(e) => setEditing({ ...editing, body: e.target.value })} />
          </label>
          <div className="row">
            <button type="submit" className="primary">
              Save
            </button>
            <button type="button" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {tab === 'gaps' && <Gaps onMakeArticle={(title, body) => setEditing({ title, body })} />}
      {tab === 'examples' && <Examples />}
      {tab === 'articles' && (
        <>
          <div className="row filters">
            <label>
              <span className="sr">Filter articles</span>
              <input type="search" placeholder="Filter…" value={filter} onChange={(e) => setFilter(e.target.value)} />
            </label>
            <label>
              Sort by{' '}
              <select value={sort} onChange={(e) => setSort(e.target.value as typeof sort)}>
                <option value="cited">Most cited by the bot</option>
                <option value="title">Title</option>
                <option value="updated">Recently updated</option>
              </select>
            </label>
          </div>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Article</th>
                <th scope="col">Cited</th>
                <th scope="col">Updated</th>
                {canEdit && <th scope="col"><span className="sr">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => (
                <tr key={a.id} id={`kb-${a.id}`}>
                  <td>
                    <strong>{a.title}</strong>
                    <div className="muted small clamp">{a.body}</div>
                    <div className="muted small">
                      {a.id}
                      {a.source ? ` · ${a.source}` : ''}
                    </div>
                  </td>
                  <td className="cited">
                    {counted ? (
                      <>
                        <span className="bar" style={{ width: `${((a.citations ?? 0) / maxCited) * 60}px` }} aria-hidden="true" /> {a.citations ?? 0}
                      </>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                  <td className="small">{ago(a.updated_at)}</td>
                  {canEdit && (
                    <td className="actions">
                      <button type="button" onClick={() => setEditing({ id: a.id, title: a.title, body: a.body })}>
                        Edit <span className="sr">{a.title}</span>
                      </button>
                      <button type="button" className="danger" onClick={() => void remove(a)}>
                        Remove <span className="sr">{a.title}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
              {shown.length === 0 && !error && (
                <tr>
                  <td colSpan={4} className="empty">
                    No articles yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
