/** Database URLs: which are usable, and how to show one without its password. */

/** The URL with its password (in the URL or a `password` parameter) hidden, for messages and logs. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = 'REDACTED';
    if (url.searchParams.has('password')) url.searchParams.set('password', 'REDACTED');
    return url.toString().replaceAll('REDACTED', '***');
  } catch {
    // Unparsable: still hide whatever sits between "user:" and "@", and any `password=` value.
    return text.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
  }
}

/** Why a DATABASE_URL value is unusable, or null when it is a Postgres URL. */
export function databaseUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return `is a ${url.protocol.slice(0, -1)}:// URL, not a Postgres one`;
  return null;
}
