/**
 * A refused configuration: names the file, the key (a JSON path such as
 * `lockspaces[1].offset`) and the reason, so an operator can fix it at once.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${file}: ${key === '' ? 'the document' : key}: ${reason}`);
  }
}
