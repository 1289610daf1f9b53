import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './exit-status.js';

/** One subcommand: its help text and what it does with its arguments. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(args: string[]): Promise<number>;
}

/** Deadline of each I/O the command-line tools make (not the lockspace's io timeout). */
export const TOOL_IO_TIMEOUT_MS = 30_000;

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs in strict mode, with its complaints turned into usage errors. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: string[];
}

export function parseCommandArgs(args: string[], options: Options): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function positiveInteger(text: string, what: string, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what} ${JSON.stringify(text)} is not a positive integer`);
  const value = Number(text);
  if (value < 1 || value > max) throw new UsageError(`${what} ${value} is outside 1..${max}`);
  return value;
}
