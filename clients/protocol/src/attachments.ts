/**
 * Attachments in a client: files are uploaded, then attached to a message;
 * their bytes are fetched with the bearer token (a plain `<img src>` cannot
 * send it) and shown through object URLs, cached per attachment.
 */
import { ApiError, type ApiClient } from './rest';

/** The file types the server accepts (it checks the bytes, not this list). */
export const ACCEPTED_FILES = 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,.txt,.pdf';

/** Object URLs of attachments, fetched once each, until {@link AttachmentUrls.dispose}. */
export class AttachmentUrls {
  private readonly urls = new Map<string, Promise<string>>();
  /** Every object URL made, to be revoked (the blob stays in memory until then). */
  private readonly made = new Set<string>();

  constructor(private readonly api: ApiClient) {}

  /** An object URL of the attachment's bytes (rejects with an {@link ApiError}: 404, 410 `gone`, …). */
  url(conversationId: string, attachmentId: string): Promise<string> {
    const key = `${conversationId}/${attachmentId}`;
    let url = this.urls.get(key);
    if (!url) {
      url = this.api.downloadAttachment(conversationId, attachmentId).then((blob) => {
        const made = URL.createObjectURL(blob);
        this.made.add(made);
        return made;
      });
      url.catch(() => this.urls.delete(key));
      this.urls.set(key, url);
    }
    return url;
  }

  /**
   * Frees every object URL made so far and forgets them: on sign-out (the
   * next user fetches with their own token) and when the view holding them
   * goes away.
   */
  dispose(): void {
    for (const made of this.made) URL.revokeObjectURL(made);
    this.made.clear();
    this.urls.clear();
  }

  /** Saves the attachment as a file named `name`. */
  async save(conversationId: string, attachmentId: string, name: string): Promise<void> {
    const link = document.createElement('a');
    link.href = await this.url(conversationId, attachmentId);
    link.download = name;
    link.rel = 'noopener';
    document.body.appendChild(link);
    link.click();
    link.remove();
  }
}

/** Why an upload failed, for people. */
export function attachmentError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === 'payload_too_large') return 'That file is too large.';
    if (e.code === 'unsupported_media_type') return 'That kind of file cannot be sent: images, PDF and text files can.';
    if (e.code === 'rate_limited') return 'Too many files for now. Try again later.';
    if (e.code === 'network') return 'You seem to be offline. Try again when you are back online.';
    return e.message;
  }
  return 'The file could not be sent.';
}
