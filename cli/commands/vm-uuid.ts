/** A VM uuid as libvirt writes it (lowercase canonical); the protocol checks the same rule. */
export const UUID_PATTERN_TEXT = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
