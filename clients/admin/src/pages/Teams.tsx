import { useCallback, useEffect, useState } from 'react';
import { teams as teamsApi, type TeamList } from '../teams';
import { usePeople } from '../people';
import { ErrorLine } from '../status';

/** Teams: admins create, rename and remove them and choose members; agents see them. Each shows who waits for a human. */
export function Teams({ canEdit }: { canEdit: boolean }) {
  const people = usePeople();
  const [list, setList] = useState<TeamList | null>(null);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [renaming, setRenaming] = useState<Record<string, string>>({});

  const reload = useCallback(() => {
    teamsApi
      .list()
      .then(setList)
      .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Cannot load the teams.'));
  }, []);
  useEffect(reload, [reload]);

  const run = async (f: () => Promise<unknown>): Promise<void> => {
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'That did not work.');
    }
    reload();
  };

  return (
    <div className="page">
      <header className="page-head">
        <h1>Teams</h1>
        {list && (
          <p className="muted" data-testid="waiting-without-team">
            Waiting for a human without a team: {list.waiting_without_team}
          </p>
        )}
      </header>
      {canEdit && (
        <form
          className="card row wrap"
          aria-label="Create a team"
          onSubmit={(e) => {
            e.preventDefault();
            void run(() => teamsApi.create(name)).then(() => setName(''));
          }}
        >
          <label>
            Team name
            <input value={name} required maxLength={60} onChange={(e) => setName(e.target.value)} />
          </label>
          <button type="submit" className="primary">
            Create team
          </button>
        </form>
      )}
      <ErrorLine error={error} />
      {list?.teams.length === 0 && <p className="muted">No teams yet: every handoff goes to any online agent.</p>}
      {list?.teams.map((t) => (
        <section key={t.id} className="card" aria-label={`Team ${t.name}`} data-team={t.id}>
          <header className="row wrap">
            {canEdit && renaming[t.id] !== undefined ? (
              <form
                className="row"
                onSubmit={(e) => {
                  e.preventDefault();
                  void run(() => teamsApi.rename(t.id, renaming[t.id] ?? t.name)).then(() => setRenaming(({ [t.id]: _, ...rest }) => rest));
                }}
              >
                <label>
                  <span className="sr">New name of {t.name}</span>
                  <input value={renaming[t.id]} required maxLength={60} onChange={(e) => setRenaming({ ...renaming, [t.id]: e.target.value })} />
                </label>
                <button type="submit">Save</button>
              </form>
            ) : (
              <h2>{t.name}</h2>
            )}
            <span className="badge" data-testid="waiting">
              Waiting for a human: {t.waiting}
            </span>
            {canEdit && renaming[t.id] === undefined && (
              <button type="button" className="ghost" onClick={() => setRenaming({ ...renaming, [t.id]: t.name })}>
                Rename
              </button>
            )}
            {canEdit && (
              <button
                type="button"
                className="danger"
                onClick={() => {
                  if (window.confirm(`Remove the team ${t.name}? Its conversations wait for any online agent.`)) void run(() => teamsApi.remove(t.id));
                }}
              >
                Remove
              </button>
            )}
          </header>
          <ul className="members" aria-label={`Members of ${t.name}`}>
            {t.members.map((m) => (
              <li key={m}>
                {people.name(m)}
                {canEdit && (
                  <button type="button" className="ghost" aria-label={`Remove ${people.name(m)} from ${t.name}`} onClick={() => void run(() => teamsApi.removeMember(t.id, m))}>
                    ✕
                  </button>
                )}
              </li>
            ))}
            {t.members.length === 0 && <li className="muted">No members yet.</li>}
          </ul>
          {canEdit && (
            <label>
              <span className="sr">Add a member to {t.name}</span>
              <select value="" onChange={(e) => e.target.value && void run(() => teamsApi.addMember(t.id, e.target.value))}>
                <option value="">Add a member…</option>
                {people.agents
                  .filter((a) => !t.members.includes(a.id))
                  .map((a) => (
                    <option key={a.id} value={a.id}>
                      {people.name(a.id)}
                    </option>
                  ))}
              </select>
            </label>
          )}
        </section>
      ))}
    </div>
  );
}
