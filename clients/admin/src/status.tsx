/**
 * The status lines every page shows the same way: an error (an alert, read
 * out at once) and a notice of what just happened (polite).
 */

/** The page's error, if any, as an alert. */
export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

/** What the last action did, if anything: a polite live region, kept in the page so it is announced. */
export function NoticeLine({ notice }: { notice: string | null }) {
  return <div aria-live="polite">{notice && <p className="notice-ok">{notice}</p>}</div>;
}
