/**
 * The app: sign in (or continue as a visitor), the conversation list, and
 * the chat. One socket per signed-in user; it reconnects at once when the
 * app comes back to the foreground, and what was typed offline goes out then.
 */
import { useEffect, useMemo, useState } from 'react';
import { ActivityIndicator, AppState, StyleSheet, View } from 'react-native';
import { SafeAreaProvider, SafeAreaView } from 'react-native-safe-area-context';
import { StatusBar } from 'expo-status-bar';
import type { Connection } from '@jamuna/protocol';
import { type AppConfig, appConfig } from './config';
import { type Platform, type Services, openConnection, openServices } from './client';
import { SignIn } from './screens/SignIn';
import { Conversations } from './screens/Conversations';
import { ChatScreen } from './chat/ChatScreen';

type Route = { name: 'list' } | { name: 'chat'; id: string };

export interface AppProps {
  config?: AppConfig;
  platform?: Platform;
}

export function App({ config, platform }: AppProps = {}) {
  const cfg = useMemo(() => config ?? appConfig(), [config]);
  const [services, setServices] = useState<Services | null>(null);
  const [signedIn, setSignedIn] = useState(false);
  const [conn, setConn] = useState<Connection | null>(null);
  const [route, setRoute] = useState<Route>({ name: 'list' });

  useEffect(() => {
    let live = true;
    void openServices(cfg, platform).then((s) => {
      if (!live) return;
      setServices(s);
      setSignedIn(s.api.session.current !== null);
    });
    return () => {
      live = false;
    };
  }, [cfg, platform]);

  useEffect(() => {
    if (!services || !signedIn) return;
    const c = openConnection(services, platform);
    const offUnauthorized = c.on('unauthorized', () => {
      services.api.session.clear();
      setSignedIn(false);
    });
    c.start();
    setConn(c);
    // Back in the foreground: a socket the OS cut while in the background reconnects now.
    const sub = AppState.addEventListener('change', (state) => {
      if (state === 'active') c.wake();
    });
    return () => {
      sub.remove();
      offUnauthorized();
      c.stop();
      setConn(null);
    };
  }, [services, signedIn, platform]);

  const me = services?.api.session.current?.user_id ?? '';
  let screen;
  if (!services) screen = <ActivityIndicator style={styles.loading} />;
  else if (!signedIn) screen = <SignIn api={services.api} config={cfg} onSignedIn={() => setSignedIn(true)} />;
  else if (!conn) screen = <ActivityIndicator style={styles.loading} />;
  else if (route.name === 'chat') screen = <ChatScreen api={services.api} conn={conn} conversationId={route.id} me={me} onBack={() => setRoute({ name: 'list' })} />;
  else
    screen = (
      <Conversations
        api={services.api}
        onOpen={(id) => setRoute({ name: 'chat', id })}
        onSignOut={() => {
          void services.api.logout();
          setRoute({ name: 'list' });
          setSignedIn(false);
        }}
      />
    );

  return (
    <SafeAreaProvider>
      <SafeAreaView style={styles.root}>
        <StatusBar style="light" />
        <View style={styles.root}>{screen}</View>
      </SafeAreaView>
    </SafeAreaProvider>
  );
}

const styles = StyleSheet.create({
  root: { flex: 1, backgroundColor: '#fff' },
  loading: { flex: 1 },
});

/** The app as the platform starts it: configured from the build (src/config.ts). */
export function Root() {
  return <App />;
}
