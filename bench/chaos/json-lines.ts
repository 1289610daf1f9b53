import type { Readable } from 'node:stream';

/**
 * Calls `onLine` with each complete line a child writes (the emulator's and
 * the writer's JSON events), and `onEvent` with the line parsed as a JSON
 * object; a line that is not JSON goes to `onLine` only.
 */
export function onJsonLines<T extends object>(stream: Readable, onEvent: (event: Partial<T>) => void, onLine: (line: string) => void = () => undefined): void {
  let buffered = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(line);
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof event === 'object' && event !== null) onEvent(event as Partial<T>);
    }
  });
}
