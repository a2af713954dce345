/** Sign in with a customer account, or continue as a visitor of the tenant (as the web widget does). */
import { useState } from 'react';
import { ActivityIndicator, Pressable, StyleSheet, Text, TextInput, View } from 'react-native';
import { type ApiClient, ApiError } from '@jamuna/protocol';
import type { AppConfig } from '../config';

export interface SignInProps {
  api: ApiClient;
  config: AppConfig;
  onSignedIn: () => void;
}

function explain(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === 'network') return 'The server cannot be reached. Check your connection.';
    if (e.status === 401) return 'That e-mail and password do not match an account.';
    return e.message;
  }
  return 'Something went wrong. Please try again.';
}

export function SignIn({ api, config, onSignedIn }: SignInProps) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const run = async (f: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await f();
      onSignedIn();
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <View style={styles.screen}>
      <Text style={styles.title} accessibilityRole="header">
        Support
      </Text>
      <Text style={styles.lead}>Ask us anything. Our assistant answers at once, and a person from the team joins when you need one.</Text>
      <Pressable
        accessibilityRole="button"
        style={[styles.button, styles.primary]}
        disabled={busy || !config.tenantKey}
        onPress={() => void run(() => api.visitor(config.tenantKey))}
      >
        <Text style={styles.primaryText}>Continue as a visitor</Text>
      </Pressable>
      {!config.tenantKey && <Text style={styles.hint}>This build has no tenant key (EXPO_PUBLIC_JAMUNA_TENANT_KEY): sign in with an account.</Text>}
      <Text style={styles.or}>or sign in with your account</Text>
      <TextInput
        style={styles.input}
        accessibilityLabel="E-mail"
        placeholder="E-mail"
        autoCapitalize="none"
        autoComplete="email"
        keyboardType="email-address"
        value={email}
        onChangeText={setEmail}
      />
      <TextInput style={styles.input} accessibilityLabel="Password" placeholder="Password" secureTextEntry value={password} onChangeText={setPassword} />
      <Pressable
        accessibilityRole="button"
        style={[styles.button, styles.secondary]}
        disabled={busy || !email || !password}
        onPress={() => void run(() => api.login(config.tenant, email.trim(), password))}
      >
        <Text style={styles.secondaryText}>Sign in</Text>
      </Pressable>
      {busy && <ActivityIndicator style={styles.spinner} />}
      {error && (
        <Text style={styles.error} accessibilityLiveRegion="assertive">
          {error}
        </Text>
      )}
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 24, justifyContent: 'center', backgroundColor: '#fff' },
  title: { fontSize: 28, fontWeight: '700', marginBottom: 8, color: '#1e1b4b' },
  lead: { fontSize: 15, color: '#475569', marginBottom: 24 },
  button: { borderRadius: 10, paddingVertical: 14, alignItems: 'center', marginVertical: 6 },
  primary: { backgroundColor: '#4f46e5' },
  primaryText: { color: '#fff', fontSize: 16, fontWeight: '600' },
  secondary: { borderWidth: 1, borderColor: '#4f46e5' },
  secondaryText: { color: '#4f46e5', fontSize: 16, fontWeight: '600' },
  or: { textAlign: 'center', color: '#64748b', marginVertical: 16 },
  input: { borderWidth: 1, borderColor: '#cbd5e1', borderRadius: 8, padding: 12, marginVertical: 4, fontSize: 16 },
  hint: { color: '#92400e', fontSize: 12 },
  spinner: { marginTop: 12 },
  error: { color: '#b91c1c', marginTop: 12, textAlign: 'center' },
});
