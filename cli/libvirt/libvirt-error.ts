/**
 * An expected failure of the libvirt integration (the hook, install-libvirt),
 * with a stable code tests and scripts match on and the kind that picks the
 * exit status (SPEC section 9): refused 4, error 1.
 */
export type LibvirtErrorKind = 'refused' | 'error';

export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';

  constructor(
    readonly code: string,
    readonly kind: LibvirtErrorKind,
    message: string,
  ) {
    super(message);
  }
}
