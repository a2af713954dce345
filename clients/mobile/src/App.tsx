/**
 * The app: sign in (or continue as a visitor), the conversation list, and
 * the chat. One socket per signed-in user; it reconnects at once when the
 * app comes back to the foreground, and what was typed offline goes out then.
 *
 * A host app that signs its customers in passes the one signed in as
 * `identity` (or `config.identity`): they are identified before anything
 * opens, skip the sign-in screen and find their past conversations; without
 * it the visitor flow is as before (a session left by an identified customer
 * is ended: the host app signed them out).
 */
import { useEffect, useMemo, useState } from 'react';
import { ActivityIndicator, AppState, Pressable, StyleSheet, Text, View } from 'react-native';
import { SafeAreaProvider, SafeAreaView } from 'react-native-safe-area-context';
import { StatusBar } from 'expo-status-bar';
import type { Connection, Identity } from '@jamuna/protocol';
import { type AppConfig, appConfig } from './config';
import { IDENTITY_KEY, type Platform, type Services, forgetSession, identifyCustomer, openConnection, openServices } from './client';
import { SignIn } from './screens/SignIn';
import { Conversations } from './screens/Conversations';
import { ChatScreen } from './chat/ChatScreen';

type Route = { name: 'list' } | { name: 'chat'; id: string };

export interface AppProps {
  config?: AppConfig;
  platform?: Platform;
  /** The host app's signed-in customer, signed by its server (over `config.identity`). */
  identity?: Identity;
}

export function App({ config, platform, identity }: AppProps = {}) {
  const cfg = useMemo(() => config ?? appConfig(), [config]);
  const given = identity ?? cfg.identity;
  // The same customer in a new object (a host re-rendering) is not a new sign-in.
  const identityKey = given ? JSON.stringify(given) : '';
  const [services, setServices] = useState<Services | null>(null);
  const [signedIn, setSignedIn] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [conn, setConn] = useState<Connection | null>(null);
  const [route, setRoute] = useState<Route>({ name: 'list' });

  useEffect(() => {
    let live = true;
    setServices(null);
    setRoute({ name: 'list' });
    void (async () => {
      const s = await openServices(cfg, platform);
      let outcome = { signedIn: s.api.session.current !== null, notice: null as string | null };
      if (identityKey) outcome = await identifyCustomer(s, JSON.parse(identityKey) as Identity);
      else if (s.store.getItem(IDENTITY_KEY) !== null) {
        forgetSession(s);
        outcome = { signedIn: false, notice: null };
      }
      if (!live) return;
      setServices(s);
      setSignedIn(outcome.signedIn);
      setNotice(outcome.notice);
    })();
    return () => {
      live = false;
    };
  }, [cfg, platform, identityKey]);

  useEffect(() => {
    if (!services || !signedIn) return;
    const c = openConnection(services, platform);
    const offUnauthorized = c.on('unauthorized', () => {
      forgetSession(services, false);
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
          forgetSession(services);
          setRoute({ name: 'list' });
          setSignedIn(false);
        }}
      />
    );

  return (
    <SafeAreaProvider>
      <SafeAreaView style={styles.root}>
        <StatusBar style="light" />
        {notice && (
          <View style={styles.notice}>
            <Text style={styles.noticeText} accessibilityLiveRegion="assertive" testID="identity-notice">
              {notice}
            </Text>
            <Pressable accessibilityRole="button" accessibilityLabel="Dismiss" onPress={() => setNotice(null)}>
              <Text style={styles.dismiss}>✕</Text>
            </Pressable>
          </View>
        )}
        <View style={styles.root}>{screen}</View>
      </SafeAreaView>
    </SafeAreaProvider>
  );
}

const styles = StyleSheet.create({
  root: { flex: 1, backgroundColor: '#fff' },
  loading: { flex: 1 },
  notice: { flexDirection: 'row', alignItems: 'center', backgroundColor: '#fef3c7', paddingHorizontal: 12, paddingVertical: 8 },
  noticeText: { flex: 1, color: '#92400e', fontSize: 13 },
  dismiss: { color: '#92400e', fontSize: 16, paddingLeft: 12 },
});

/** The app as the platform starts it: configured from the build (src/config.ts). */
export function Root() {
  return <App />;
}
