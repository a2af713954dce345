/**
 * Files on the phone: picking one to send (expo-document-picker), and
 * showing or opening the ones in a conversation. Their bytes come through the
 * protocol client's authenticated download (`ApiClient.downloadAttachment`):
 * an `<Image>` cannot send the bearer token itself.
 *
 * - On the web, as in the widget: object URLs (`AttachmentUrls`), and a
 *   file is saved by the browser.
 * - On iOS and Android an object URL is no source for `<Image>`: pictures
 *   are shown from a base64 `data:` URI, and a file is written to the app's
 *   cache and handed to the system share sheet (open in, save to Files, …).
 */
import { Platform } from 'react-native';
import * as DocumentPicker from 'expo-document-picker';
import { File, Paths } from 'expo-file-system';
import * as Sharing from 'expo-sharing';
import { type ApiClient, type Attachment, AttachmentUrls, textOf } from '@jamuna/protocol';

/** What the picker offers: the types the server accepts (it checks the bytes, not this list). */
export const PICKABLE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain'];

export interface PickedFile {
  name: string;
  blob: Blob;
}

/** Asks the customer for one file; null when they cancel. */
export async function pickFile(): Promise<PickedFile | null> {
  const res = await DocumentPicker.getDocumentAsync({ type: PICKABLE_TYPES, copyToCacheDirectory: true, multiple: false });
  if (res.canceled) return null;
  const asset = res.assets[0];
  if (!asset) return null;
  // The web picker hands over the File itself; on the phone the copy in the cache is read through fetch.
  const blob = asset.file ?? (await (await fetch(asset.uri)).blob());
  return { name: asset.name || 'file', blob };
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function base64Of(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b, c] = [bytes[i]!, bytes[i + 1], bytes[i + 2]];
    out += BASE64[a >> 2]! + BASE64[((a & 3) << 4) | ((b ?? 0) >> 4)]!;
    out += b === undefined ? '=' : BASE64[((b & 15) << 2) | ((c ?? 0) >> 6)]!;
    out += c === undefined ? '=' : BASE64[c & 63]!;
  }
  return out;
}

/** A `data:` URI of the bytes (React Native's FileReader reads blobs natively; else from their ArrayBuffer). */
export async function dataUri(blob: Blob, contentType: string): Promise<string> {
  if (typeof FileReader !== 'undefined') {
    const read = await new Promise<string>((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(typeof reader.result === 'string' ? reader.result : '');
      reader.onerror = () => reject(reader.error ?? new Error('The file could not be read.'));
      reader.readAsDataURL(blob);
    });
    const comma = read.indexOf(',');
    // The server's content type, not what the reader guessed (often none on the phone).
    if (read.startsWith('data:') && comma > 0) return `data:${contentType};base64,${read.slice(comma + 1)}`;
  }
  return `data:${contentType};base64,${base64Of(new Uint8Array(await blob.arrayBuffer()))}`;
}

/** A file name safe in the cache directory. */
export function cacheName(a: Attachment): string {
  const name = Array.from(textOf(a.name), (ch) => (ch < ' ' || '\\/:*?"<>|'.includes(ch) ? '_' : ch)).join('').trim() || 'file';
  return `${a.id}-${name}`;
}

/** What the chat needs of a conversation's files; one per conversation, each image fetched once. */
export interface AttachmentFiles {
  /** A source for `<Image>` (an object URL on the web, a data URI on the phone); rejects with an `ApiError` (410 `gone`, …). */
  imageUri(attachmentId: string, contentType: string): Promise<string>;
  /** Opens a file: saved by the browser, or shared from the cache on the phone. */
  open(a: Attachment): Promise<void>;
  /** Frees what the images hold (object URLs on the web) when the conversation's screen goes. */
  dispose(): void;
}

export function attachmentFiles(api: ApiClient, conversationId: string, os: string = Platform.OS): AttachmentFiles {
  if (os === 'web') {
    const urls = new AttachmentUrls(api);
    return {
      imageUri: (attachmentId) => urls.url(conversationId, attachmentId),
      open: (a) => urls.save(conversationId, a.id, textOf(a.name) || 'file'),
      dispose: () => urls.dispose(),
    };
  }
  const images = new Map<string, Promise<string>>();
  const bytes = async (attachmentId: string, contentType: string): Promise<string> => dataUri(await api.downloadAttachment(conversationId, attachmentId), contentType);
  return {
    imageUri(attachmentId, contentType) {
      let uri = images.get(attachmentId);
      if (!uri) {
        uri = bytes(attachmentId, contentType);
        uri.catch(() => images.delete(attachmentId));
        images.set(attachmentId, uri);
      }
      return uri;
    },
    async open(a) {
      const file = new File(Paths.cache, cacheName(a));
      if (!file.exists) {
        const uri = await bytes(a.id, a.content_type);
        file.create({ overwrite: true });
        file.write(uri.slice(uri.indexOf(',') + 1), { encoding: 'base64' });
      }
      await Sharing.shareAsync(file.uri, { mimeType: a.content_type, dialogTitle: textOf(a.name) || 'file' });
    },
    dispose: () => images.clear(),
  };
}
