import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { ApiError, type ConnectionStatus, type Me, type UserItem } from '@jamuna/protocol';
import { api, closeSocket, socket } from './client';
import { go, href, useRoute } from './router';
import { shortId } from './format';
import { Login } from './pages/Login';
import { Inbox } from './pages/Inbox';
import { Knowledge } from './pages/Knowledge';
import { AnalyticsPage } from './pages/Analytics';
import { Users } from './pages/Users';
import { Settings } from './pages/Settings';

export interface People {
  me: Me;
  users: Map<string, UserItem>;
  /** A display name for a user id. */
  name(id: string | null | undefined): string;
  agents: UserItem[];
  reload(): void;
}

const PeopleContext = createContext<People | null>(null);
export function usePeople(): People {
  const p = useContext(PeopleContext);
  if (!p) throw new Error('usePeople outside the signed-in app');
  return p;
}

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(true);

  useEffect(() => {
    if (!api.session.current) {
      setChecking(false);
      return;
    }
    api
      .me()
      .then((m) => (m.role === 'customer' ? api.logout().then(() => setMe(null)) : setMe(m)))
      .catch(() => api.session.clear())
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <div className="boot">Loading…</div>;
  if (!me) return <Login onSignedIn={setMe} />;
  return (
    <Shell
      me={me}
      onSignOut={() => {
        closeSocket();
        void api.logout();
        setMe(null);
        go('inbox');
      }}
    />
  );
}

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const route = useRoute();
  const [users, setUsers] = useState<UserItem[]>([]);
  const [status, setStatus] = useState<ConnectionStatus>(() => socket().status);
  const [menu, setMenu] = useState(false);
  const isAdmin = me.role === 'admin';

  const reload = useCallback(() => {
    api
      .users()
      .then((p) => setUsers(p.items))
      .catch((e: unknown) => {
        if (!(e instanceof ApiError)) console.error(e);
      });
  }, []);
  useEffect(reload, [reload]);

  useEffect(() => {
    const s = socket();
    setStatus(s.status);
    const offs = [s.on('status', setStatus), s.on('unauthorized', onSignOut)];
    return () => offs.forEach((o) => o());
  }, [onSignOut]);

  const people = useMemo<People>(() => {
    const map = new Map(users.map((u) => [u.id, u]));
    return {
      me,
      users: map,
      agents: users.filter((u) => (u.role === 'agent' || u.role === 'admin') && !u.erased),
      reload,
      name(id) {
        if (!id) return 'Nobody';
        if (id === me.id) return me.name ? `${me.name} (you)` : 'You';
        const u = map.get(id);
        if (u?.erased) return 'Erased user';
        return u?.name || u?.email || `Visitor ${shortId(id)}`;
      },
    };
  }, [users, me, reload]);

  const page = route[0] ?? 'inbox';
  const nav: [string, string, boolean][] = [
    ['inbox', 'Inbox', true],
    ['kb', 'Knowledge base', true],
    ['analytics', 'Analytics', true],
    ['users', 'Users', isAdmin],
    ['settings', 'Install & settings', isAdmin],
  ];

  return (
    <PeopleContext.Provider value={people}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <div className="shell">
        <header className="topbar">
          <button type="button" className="menu-button" aria-expanded={menu} aria-controls="sidenav" onClick={() => setMenu(!menu)}>
            <span aria-hidden="true">☰</span>
            <span className="sr">Menu</span>
          </button>
          <a className="brand" href={href('inbox')}>
            Jamuna <span>support</span>
          </a>
          <span className={`conn conn-${status}`} role="status" data-testid="connection">
            {status === 'open' ? 'Live' : status === 'offline' ? 'Offline' : status === 'closed' ? 'Disconnected' : 'Connecting…'}
          </span>
          <span className="whoami">
            {me.name || me.email} · {me.role}
          </span>
          <button type="button" className="ghost" onClick={onSignOut}>
            Sign out
          </button>
        </header>
        <nav id="sidenav" className={`sidenav ${menu ? 'open' : ''}`} aria-label="Sections">
          <ul>
            {nav
              .filter(([, , shown]) => shown)
              .map(([id, label]) => (
                <li key={id}>
                  <a href={href(id)} aria-current={page === id ? 'page' : undefined} onClick={() => setMenu(false)}>
                    {label}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <main id="main" className="main" tabIndex={-1}>
          {page === 'inbox' && <Inbox view={route[1]} conversationId={route[2]} />}
          {page === 'kb' && <Knowledge canEdit={isAdmin || me.role === 'agent'} />}
          {page === 'analytics' && <AnalyticsPage />}
          {page === 'users' && isAdmin && <Users />}
          {page === 'settings' && isAdmin && <Settings />}
        </main>
      </div>
    </PeopleContext.Provider>
  );
}
