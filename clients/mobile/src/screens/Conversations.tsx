/** The customer's conversations, newest first, and a button to start one. */
import { useCallback, useEffect, useState } from 'react';
import { FlatList, Pressable, RefreshControl, StyleSheet, Text, View } from 'react-native';
import { type ApiClient, ApiError, type ConversationSummary, textOf } from '@jamuna/protocol';

export interface ConversationsProps {
  api: ApiClient;
  onOpen: (id: string) => void;
  onSignOut: () => void;
}

const STATUS: Record<ConversationSummary['status'], string> = { open: 'Open', pending: 'Waiting for an agent', resolved: 'Resolved' };

export function Conversations({ api, onOpen, onSignOut }: ConversationsProps) {
  const [items, setItems] = useState<ConversationSummary[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const page = await api.conversations({ limit: 50 });
      setItems(page.items);
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError && e.code === 'network' ? 'Offline: showing what we had.' : 'Your conversations could not be loaded.');
    } finally {
      setLoading(false);
    }
  }, [api]);

  useEffect(() => {
    void load();
  }, [load]);

  const start = async (): Promise<void> => {
    try {
      const { id } = await api.startConversation('mobile');
      onOpen(id);
    } catch (e) {
      setError(e instanceof ApiError && e.code === 'network' ? 'You are offline: a new conversation needs the network.' : 'The conversation could not be started.');
    }
  };

  return (
    <View style={styles.screen}>
      <View style={styles.header}>
        <Text style={styles.title} accessibilityRole="header">
          Your conversations
        </Text>
        <Pressable accessibilityRole="button" onPress={onSignOut}>
          <Text style={styles.link}>Sign out</Text>
        </Pressable>
      </View>
      {error && <Text style={styles.error}>{error}</Text>}
      <FlatList
        data={items ?? []}
        keyExtractor={(c) => c.id}
        refreshControl={<RefreshControl refreshing={loading} onRefresh={() => void load()} />}
        ListEmptyComponent={items ? <Text style={styles.empty}>No conversations yet.</Text> : null}
        renderItem={({ item }) => (
          <Pressable accessibilityRole="button" style={styles.item} onPress={() => onOpen(item.id)}>
            <Text style={styles.itemText} numberOfLines={1}>
              {item.last_message ? textOf(item.last_message.text) : 'New conversation'}
            </Text>
            <Text style={styles.itemMeta}>
              {STATUS[item.status]} · {new Date(item.updated_at).toLocaleString()}
            </Text>
          </Pressable>
        )}
      />
      <Pressable accessibilityRole="button" style={styles.new} onPress={() => void start()}>
        <Text style={styles.newText}>New conversation</Text>
      </Pressable>
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, backgroundColor: '#fff' },
  header: { flexDirection: 'row', justifyContent: 'space-between', alignItems: 'center', padding: 16, backgroundColor: '#4f46e5' },
  title: { color: '#fff', fontSize: 18, fontWeight: '600' },
  link: { color: '#e0e7ff' },
  error: { backgroundColor: '#fee2e2', color: '#991b1b', padding: 8, textAlign: 'center' },
  empty: { textAlign: 'center', color: '#64748b', marginTop: 40 },
  item: { padding: 16, borderBottomWidth: StyleSheet.hairlineWidth, borderBottomColor: '#cbd5e1' },
  itemText: { fontSize: 16, color: '#0f172a' },
  itemMeta: { fontSize: 12, color: '#64748b', marginTop: 4 },
  new: { margin: 16, borderRadius: 10, paddingVertical: 14, alignItems: 'center', backgroundColor: '#4f46e5' },
  newText: { color: '#fff', fontSize: 16, fontWeight: '600' },
});
