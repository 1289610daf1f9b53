/**
 * Imported second by the command-line entry (after the SIGUSR1 handler),
 * before any module opens a descriptor that lives on: what is open now, apart
 * from Node's own, was inherited, and `supervise` passes it to its child.
 */
import { recordInheritedFds } from '../supervisor/inherited-fds.js';

recordInheritedFds();
