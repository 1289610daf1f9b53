/** Where the helper keeps its sockets, keys and state unless told otherwise. */
export const RUN_DIR_DEFAULT = '/run/vmlease';
