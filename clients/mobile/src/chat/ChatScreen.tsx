/**
 * The chat: GiftedChat over one conversation. Bot answers show their
 * sources; the latest answer offers "This helped" / "Talk to a human" as quick
 * replies; an agent who joins gets a name and an avatar; typing shows both
 * ways; messages typed offline show as pending until the server has them;
 * a resolved conversation asks for a rating. The paperclip sends a file
 * (with what was typed, or alone); pictures in the conversation show as
 * thumbnails, other files as a row that opens them (see ./attachments).
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ActivityIndicator, Image, Pressable, StyleSheet, Text, View, useWindowDimensions } from 'react-native';
import { Bubble, type BubbleProps, GiftedChat, type Reply, type User } from 'react-native-gifted-chat';
import { type ApiClient, ApiError, type Attachment, type Connection, formatSize, isImage, textOf } from '@jamuna/protocol';
import { useConversation } from '../useConversation';
import { type AttachmentFiles, attachmentFiles, pickFile } from './attachments';
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

  // The composer's text is ours: a file goes out with it.
  const [draft, setDraft] = useState('');
  const [uploading, setUploading] = useState(false);
  const [fileError, setFileError] = useState<string | null>(null);
  const files = useMemo(() => attachmentFiles(api, conversationId), [api, conversationId]);
  useEffect(() => () => files.dispose(), [files]);
  const { attach, typing } = chat;
  const onAttach = useCallback(async () => {
    setFileError(null);
    let picked;
    try {
      picked = await pickFile();
    } catch {
      setFileError('The file could not be read. Try another one.');
      return;
    }
    if (!picked) return;
    setUploading(true);
    const ok = await attach(picked.blob, picked.name, draft);
    setUploading(false);
    if (ok) {
      setDraft('');
      typing(false);
    }
  }, [attach, typing, draft]);
  const openFile = useCallback(
    (a: Attachment) => {
      setFileError(null);
      files.open(a).catch(() => setFileError(`${textOf(a.name) || 'The file'} could not be opened.`));
    },
    [files],
  );

  const renderActions = useCallback(
    () => (
      <Pressable accessibilityRole="button" accessibilityLabel="Attach a file" accessibilityState={{ disabled: uploading, busy: uploading }} disabled={uploading} onPress={() => void onAttach()} style={styles.attach} testID="attach">
        {uploading ? <ActivityIndicator size="small" color="#4f46e5" /> : <Text style={styles.attachText}>📎</Text>}
      </Pressable>
    ),
    [uploading, onAttach],
  );

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
      return (
        <View style={styles.files} accessibilityLabel="Attachments" testID={`attachments-${m._id}`}>
          {m.attachments.map((a) => (
            <AttachmentItem key={a.id} a={a} files={files} onOpen={openFile} />
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
  }, [files, openFile]);

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
      {(fileError ?? chat.error) && (
        <Text style={styles.error} accessibilityLiveRegion="assertive" testID="chat-error">
          {fileError ?? chat.error}
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
        text={draft}
        textInputProps={{
          placeholder: 'Write a message…',
          accessibilityLabel: 'Your message',
          onChangeText: (t: string) => {
            setDraft(t);
            chat.typing(t.length > 0);
          },
        }}
        renderActions={renderActions}
        isSendButtonAlwaysVisible
      />
    </View>
  );
}

/** One file in a message: a picture as a thumbnail, anything else as a row with its name and size; both open the file. */
function AttachmentItem({ a, files, onOpen }: { a: Attachment; files: AttachmentFiles; onOpen: (a: Attachment) => void }) {
  const name = textOf(a.name) || 'file';
  const { id, content_type: contentType } = a;
  const image = isImage(contentType);
  const [uri, setUri] = useState<string | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    if (!image) return;
    let live = true;
    files.imageUri(id, contentType).then(
      (u) => live && setUri(u),
      (e: unknown) => live && setFailed(e instanceof ApiError && (e.status === 404 || e.status === 410) ? 'no longer available' : 'could not be loaded'),
    );
    return () => {
      live = false;
    };
  }, [files, id, contentType, image]);
  if (failed)
    return (
      <Text style={styles.fileGone} testID={`file-${id}`}>
        {name} ({failed})
      </Text>
    );
  if (image)
    return uri ? (
      <Pressable accessibilityRole="imagebutton" accessibilityLabel={`Picture ${name}: open`} onPress={() => onOpen(a)}>
        <Image source={{ uri }} style={styles.thumb} resizeMode="cover" accessibilityIgnoresInvertColors testID={`thumb-${id}`} />
      </Pressable>
    ) : (
      <Text style={styles.source} testID={`file-${id}`}>
        Loading {name}…
      </Text>
    );
  return (
    <Pressable accessibilityRole="button" accessibilityLabel={`File ${name}, ${formatSize(a.size)}: open`} onPress={() => onOpen(a)} style={styles.file} testID={`file-${id}`}>
      <Text style={styles.fileIcon}>📄</Text>
      <Text style={styles.fileName} numberOfLines={1}>
        {name}
      </Text>
      <Text style={styles.fileSize}>{formatSize(a.size)}</Text>
    </Pressable>
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
  files: { paddingHorizontal: 8, paddingTop: 6, paddingBottom: 2 },
  thumb: { width: 180, height: 180, borderRadius: 10, backgroundColor: '#e2e8f0', marginBottom: 4 },
  file: { flexDirection: 'row', alignItems: 'center', backgroundColor: '#f1f5f9', borderRadius: 8, paddingHorizontal: 8, paddingVertical: 6, marginBottom: 4, maxWidth: 240 },
  fileIcon: { fontSize: 16, marginRight: 6 },
  fileName: { flexShrink: 1, fontSize: 13, color: '#1e3a8a', textDecorationLine: 'underline' },
  fileSize: { fontSize: 11, color: '#475569', marginLeft: 6 },
  fileGone: { fontSize: 12, color: '#64748b', fontStyle: 'italic', marginBottom: 4 },
  attach: { justifyContent: 'center', alignItems: 'center', width: 40, height: 44, marginLeft: 4 },
  attachText: { fontSize: 20 },
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
