#!/usr/bin/env node
// Only these two are imported statically: every module in the static graph is
// read before any runs, and Node opens descriptors of its own meanwhile (it
// opened /dev/null while reading the full graph). The SIGUSR1 handler comes
// first; then what is open is what we inherited; then the tool loads.
import './ignore-sigusr1.js';
import './record-inherited-fds.js';

await import('./commands-main.js');
