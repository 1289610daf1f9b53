/**
 * Imported first by the command-line entry, so it runs before any other
 * module: Node 20 opens its inspector (a debugger port) on SIGUSR1 unless the
 * signal has a handler. No vmlease process may be opened to a debugger by a
 * signal (the supervisor runs in the VM's security context).
 */
process.on('SIGUSR1', () => undefined);
