/**
 * A refused configuration: names the file, the key (a JSON path such as
 * `lockspaces[1].offset`) and the reason, so an operator can fix it at once.
 * The message is one line of printable text: the key and the reason can carry
 * text from the file itself (an unknown key's name, the JSON parser's quote of
 * the text around an error), whose newlines and control characters are shown
 * escaped, never written raw to a terminal or a log.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${oneLine(file)}: ${key === '' ? 'the document' : oneLine(key)}: ${oneLine(reason)}`);
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Text with its control characters (C0, DEL, C1) escaped. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
