/**
 * Every limit of the wire contract, in one place. Units come last in the name.
 * Name and host-name caps are the on-disk format's: a name the protocol admits
 * must be one the format can store, so they are imported, not repeated.
 */
import { HOSTS_MAX_LIMIT } from '../helper/format/layout.js';

/** Lockspace and resource names (1..48 bytes), host names (up to 64 UTF-8 bytes): helper/format's limits. */
export { HOST_NAME_BYTES_MAX, NAME_BYTES_MAX } from '../helper/format/layout.js';

export const PROTOCOL_VERSION = 1;

/** One supervisor-channel frame, either direction (ws maxPayload). Fits the largest granted statement twice over. */
export const SUPERVISOR_FRAME_BYTES_MAX = 16_384;
/** One admin-channel frame: it will carry domain XML. */
export const ADMIN_FRAME_BYTES_MAX = 1_048_576;

/** Random bytes in a client's hello nonce, echoed in the signed welcome. */
export const NONCE_BYTES = 32;
/** A one-time bind secret (registration without libvirt). */
export const SECRET_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
/** libsodium's Ed25519 secret key: the 32-byte seed followed by the 32-byte public key. */
export const ED25519_SECRET_KEY_BYTES = 64;

/** Host ids run 1..HOSTS_MAX_LIMIT (helper/format's limit). */
export const HOST_ID_MAX = HOSTS_MAX_LIMIT;

/** Incarnation and session ids: short tokens chosen by the helper. */
export const INCARNATION_BYTES_MAX = 64;
export const SESSION_ID_BYTES_MAX = 64;
/** Error codes in replies and goodbyes: UPPER_SNAKE tokens. */
export const ERROR_CODE_BYTES_MAX = 64;
/** Human-readable text: error messages, goodbye reasons, loss reasons. */
export const MESSAGE_BYTES_MAX = 1024;

/** Leases in one granted statement (sanlock's default per process is 8). */
export const LEASES_PER_STATEMENT_MAX = 16;
/** A signed statement's body text. The largest granted body is about 4.5 KiB; JSON escaping in a frame at most doubles it. */
export const STATEMENT_BODY_BYTES_MAX = 6144;

/** Linux PID_MAX_LIMIT (2^22): no pid is larger. */
export const PID_MAX = 4_194_304;
/** A reported child pid: 1 is init, never a VM's child. */
export const CHILD_PID_MIN = 2;
/** uid/gid are u32; 2^32-1 is (uid_t)-1, "no id". */
export const ID_MAX = 4_294_967_294;
/** /proc/PID/stat field 22 (starttime) is an unsigned long long printed in decimal. */
export const START_TIME_DIGITS_MAX = 20;
export const START_TIME_MAX = 18_446_744_073_709_551_615n;

/** The helper's public key file in its run dir. */
export const PUBLIC_KEY_FILE_VERSION = 1;
export const PUBLIC_KEY_FILE_BYTES_MAX = 1024;

/** Length cap on a message's `type` (and a statement's `kind`) before it is compared. */
export const TYPE_BYTES_MAX = 32;
