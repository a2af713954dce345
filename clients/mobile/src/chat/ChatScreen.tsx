/**
 * The chat: GiftedChat over one conversation. Bot answers show their
 * sources; the latest answer offers "This helped" / "Talk to a human" as quick
 * replies; an agent who joins gets a name and an avatar; typing shows both
 * ways; messages typed offline show as pending until the server has them;
 * a resolved conversation asks for a rating.
 */
import { useCallback, useMemo } from 'react';
import { Pressable, StyleSheet, Text, View, useWindowDimensions } from 'react-native';
import { Bubble, type BubbleProps, GiftedChat, type Reply, type User } from 'react-native-gifted-chat';
import type { ApiClient, Connection } from '@jamuna/protocol';
import { formatSize, isImage, textOf } from '@jamuna/protocol';
import { useConversation } from '../useConversation';
import { type JamunaMessage, QUICK_HELPED, QUICK_HUMAN, agentName, initials, toGiftedMessages } from './messages';

export interface ChatScreenProps {
  api: ApiClient;
  conn: Connection;
  conversationId: string;
  /** The signed-in customer's user id. */
  me: string;
  onBack?: () => void;
}

type ChatProps = Parameters<typeof GiftedChat<JamunaMessage>>[0];
type QuickRepliesProps = Parameters<NonNullable<ChatProps['renderQuickReplies']>>[0];

const STATUS_TEXT: Record<string, string> = {
  connecting: 'Connecting…',
  offline: 'Offline: messages will be sent when you are back online',
  closed: 'Disconnected',
};

export function ChatScreen({ api, conn, conversationId, me, onBack }: ChatScreenProps) {
  const chat = useConversation(api, conn, conversationId);
  // Bubbles leave room for the avatar (left) and a margin: in pixels, as percentages differ between renderers.
  const { width } = useWindowDimensions();
  const bubbleWidth = useMemo(() => ({ left: { maxWidth: Math.max(160, width - 100) }, right: { maxWidth: Math.max(160, width - 70) } }), [width]);
  const { view } = chat;
  const messages = useMemo(() => toGiftedMessages(view, me, chat.agentNames), [view, me, chat.agentNames]);
  const user = useMemo<User>(() => ({ _id: me }), [me]);
  const agentId = view.agents[view.agents.length - 1] ?? null;
  const agent = agentId ? agentName(agentId, chat.agentNames) : null;

  const onSend = useCallback((sent: JamunaMessage[]) => {
    for (const m of sent) chat.send(m.text);
  }, [chat]);

  const onQuickReply = useCallback(
    (replies: Reply[]) => {
      const reply = replies[0];
      if (!reply) return;
      if (reply.value === QUICK_HUMAN) {
        void chat.askHuman();
        return;
      }
      const answer = messages.find((m) => m._id === reply.messageId);
      if (reply.value === QUICK_HELPED && answer?.version != null) void chat.rateAnswer(answer.version, true);
    },
    [chat, messages],
  );

  // Our own buttons rather than GiftedChat's: labelled for screen readers, and pressable in every renderer.
  const renderQuickReplies = useCallback(
    ({ currentMessage: m }: QuickRepliesProps) => {
      if (!m.quickReplies) return null;
      return (
        <View style={styles.quick} accessibilityLabel="Quick replies">
          {m.quickReplies.values.map((r) => (
            <Pressable key={r.value} accessibilityRole="button" style={styles.chip} onPress={() => onQuickReply([{ ...r, messageId: m._id }])}>
              <Text style={styles.chipText}>{r.title}</Text>
            </Pressable>
          ))}
        </View>
      );
    },
    [onQuickReply],
  );

  const renderCustomView = useCallback((props: BubbleProps<JamunaMessage>) => {
    const m = props.currentMessage;
    if (m.attachments?.length) {
      // Received files, by name and size (the app has no picker, and no in-app preview yet).
      return (
        <View style={styles.sources} accessibilityLabel="Attachments" testID={`attachments-${m._id}`}>
          {m.attachments.map((a) => (
            <Text key={a.id} style={styles.source} numberOfLines={1}>
              {isImage(a.content_type) ? 'Image' : 'File'}: {textOf(a.name)} · {formatSize(a.size)}
            </Text>
          ))}
        </View>
      );
    }
    if (m.role !== 'bot' || !m.sources?.length) return null;
    return (
      <View style={styles.sources} accessibilityLabel="Sources" testID={`sources-${m._id}`}>
        <Text style={styles.sourcesTitle}>Sources</Text>
        {m.sources.map((s) => (
          <Text key={s.article_id} style={styles.source} numberOfLines={2}>
            • {s.title}
          </Text>
        ))}
      </View>
    );
  }, []);

  const renderBubble = useCallback(
    (props: BubbleProps<JamunaMessage>) => (
      <Bubble
        {...props}
        wrapperStyle={bubbleWidth}
        renderTicks={(m: JamunaMessage) =>
          m.user._id === me ? (
            <Text style={styles.tick} accessibilityLabel={m.failed ? 'Not sent' : m.pending ? 'Sending' : 'Sent'} testID={`state-${m._id}`}>
              {m.failed ? ' !' : m.pending ? ' 🕓' : ' ✓'}
            </Text>
          ) : null
        }
      />
    ),
    [me, bubbleWidth],
  );

  const renderFooter = useCallback(() => {
    if (view.status !== 'resolved') return null;
    if (view.csat !== null) return <Text style={styles.notice}>Thanks for your rating!</Text>;
    return (
      <View style={styles.csat} accessibilityLabel="Rate this conversation" testID="csat">
        <Text style={styles.csatTitle}>How did we do?</Text>
        <View style={styles.row}>
          {[1, 2, 3, 4, 5].map((n) => (
            <Pressable key={n} accessibilityRole="button" accessibilityLabel={`${n} of 5`} onPress={() => void chat.rateConversation(n)} style={styles.star}>
              <Text style={styles.starText}>{n}★</Text>
            </Pressable>
          ))}
        </View>
      </View>
    );
  }, [view.status, view.csat, chat]);

  const statusText = STATUS_TEXT[chat.status];
  return (
    <View style={styles.screen}>
      <View style={styles.header}>
        {onBack && (
          <Pressable accessibilityRole="button" accessibilityLabel="Back to conversations" onPress={onBack} style={styles.back}>
            <Text style={styles.backText}>‹</Text>
          </Pressable>
        )}
        {agent ? (
          <View style={styles.avatar} testID="agent-avatar">
            <Text style={styles.avatarText}>{initials(agent)}</Text>
          </View>
        ) : null}
        <View style={styles.headerText}>
          <Text style={styles.title} testID="chat-title">
            {agent ?? 'Support'}
          </Text>
          <Text style={styles.subtitle} testID="chat-subtitle">
            {chat.agentTyping ? 'typing…' : agent ? 'from the support team' : view.status === 'pending' ? 'Waiting for a person from the team' : 'Assistant · answers from our help centre'}
          </Text>
        </View>
      </View>
      {statusText && (
        <Text style={styles.banner} accessibilityLiveRegion="polite" testID="connection">
          {statusText}
        </Text>
      )}
      {chat.error && (
        <Text style={styles.error} accessibilityLiveRegion="assertive">
          {chat.error}
        </Text>
      )}
      <GiftedChat<JamunaMessage>
        messages={messages}
        user={user}
        onSend={onSend}
        onQuickReply={onQuickReply}
        renderQuickReplies={renderQuickReplies}
        isTyping={chat.agentTyping}
        renderCustomView={renderCustomView}
        isCustomViewBottom
        renderBubble={renderBubble}
        renderChatFooter={renderFooter}
        isUsernameVisible
        isUserAvatarVisible={false}
        textInputProps={{ placeholder: 'Write a message…', accessibilityLabel: 'Your message', onChangeText: (t: string) => chat.typing(t.length > 0) }}
        isSendButtonAlwaysVisible
      />
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, backgroundColor: '#fff' },
  header: { flexDirection: 'row', alignItems: 'center', paddingHorizontal: 12, paddingVertical: 10, backgroundColor: '#4f46e5' },
  back: { paddingRight: 12 },
  backText: { color: '#fff', fontSize: 28, lineHeight: 28 },
  headerText: { flex: 1 },
  title: { color: '#fff', fontSize: 17, fontWeight: '600' },
  subtitle: { color: '#e0e7ff', fontSize: 12 },
  avatar: { width: 34, height: 34, borderRadius: 17, backgroundColor: '#f59e0b', alignItems: 'center', justifyContent: 'center', marginRight: 10 },
  avatarText: { color: '#fff', fontWeight: '700' },
  banner: { backgroundColor: '#fef3c7', color: '#92400e', padding: 6, textAlign: 'center', fontSize: 12 },
  error: { backgroundColor: '#fee2e2', color: '#991b1b', padding: 6, textAlign: 'center', fontSize: 12 },
  sources: { paddingHorizontal: 10, paddingTop: 6, paddingBottom: 2, borderTopWidth: StyleSheet.hairlineWidth, borderTopColor: '#cbd5e1', marginTop: 2 },
  sourcesTitle: { fontSize: 11, fontWeight: '700', color: '#475569', textTransform: 'uppercase' },
  source: { fontSize: 12, color: '#1e3a8a', marginTop: 2 },
  quick: { flexDirection: 'row', flexWrap: 'wrap', marginTop: 6 },
  chip: { borderWidth: 1, borderColor: '#4f46e5', borderRadius: 16, paddingHorizontal: 12, paddingVertical: 6, marginRight: 6, marginTop: 4 },
  chipText: { color: '#4f46e5', fontSize: 14 },
  tick: { fontSize: 10, color: '#fff' },
  notice: { textAlign: 'center', color: '#475569', padding: 8 },
  csat: { padding: 10, alignItems: 'center', backgroundColor: '#f8fafc' },
  csatTitle: { fontWeight: '600', marginBottom: 6 },
  row: { flexDirection: 'row' },
  star: { paddingHorizontal: 8, paddingVertical: 4, marginHorizontal: 3, borderRadius: 6, backgroundColor: '#e0e7ff' },
  starText: { fontSize: 16 },
});
