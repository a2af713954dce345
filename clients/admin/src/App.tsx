import { useEffect, useState } from 'react';
import type { ConnectionStatus, Me } from '@jamuna/protocol';
import { api, closeSocket, files, socket } from './client';
import { go, href, useRoute } from './router';
import { PeopleProvider } from './people';
import { Notifications } from './Notifications';
import { Login } from './pages/Login';
import { Inbox } from './pages/Inbox';
import { Knowledge } from './pages/Knowledge';
import { AnalyticsPage } from './pages/Analytics';
import { Users } from './pages/Users';
import { Settings } from './pages/Settings';
import { Teams } from './pages/Teams';
import { Webhooks } from './pages/Webhooks';

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
        files.dispose();
        void api.logout();
        setMe(null);
        go('inbox');
      }}
    />
  );
}

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const route = useRoute();
  const [status, setStatus] = useState<ConnectionStatus>(() => socket().status);
  const [menu, setMenu] = useState(false);
  const isAdmin = me.role === 'admin';

  useEffect(() => {
    const s = socket();
    setStatus(s.status);
    const offs = [s.on('status', setStatus), s.on('unauthorized', onSignOut)];
    return () => offs.forEach((o) => o());
  }, [onSignOut]);

  const page = route[0] ?? 'inbox';
  const nav: [string, string, boolean][] = [
    ['inbox', 'Inbox', true],
    ['kb', 'Knowledge base', true],
    ['analytics', 'Analytics', true],
    ['users', 'Users', isAdmin],
    ['teams', 'Teams', true],
    ['settings', 'Install & settings', isAdmin],
  ];

  return (
    <PeopleProvider me={me}>
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
          <Notifications me={me} openConversation={page === 'inbox' ? route[2] : undefined} />
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
          {page === 'teams' && <Teams canEdit={isAdmin} />}
          {page === 'settings' && isAdmin && (route[1] === 'webhooks' ? <Webhooks /> : <Settings />)}
        </main>
      </div>
    </PeopleProvider>
  );
}
