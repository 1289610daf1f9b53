/*
 * vmlease_native: the few kernel facts Node cannot tell us.
 *
 * bufferAddress(view) returns the address of a typed array's first byte as a
 * BigInt. The storage layer asserts with it that every O_DIRECT buffer is
 * sector-aligned: the development kernel accepts some misaligned direct I/O
 * that production kernels refuse, so only an explicit check catches the bug.
 *
 * peerCredentials(fd) returns { pid, uid, gid } of the peer of a connected
 * Unix socket, as the kernel recorded them at connect() (SO_PEERCRED). The
 * helper identifies its clients with it; Node has no API for it.
 *
 * pidfdOpen(pid) and pidfdSendSignal(pidfd, signo) let the helper signal a
 * process it has verified without racing pid reuse: a pidfd opened BEFORE the
 * /proc check keeps naming the process that held the pid then, so if the
 * check (start time) passes after the open, the signal reaches that process
 * and no other.
 *
 * Everything here is Node-API (ABI stable) and context-aware, so worker
 * threads may load it.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define CHECK_OK(env, call, what)                                  \
  do {                                                             \
    if ((call) != napi_ok) {                                       \
      napi_throw_error((env), "VMLEASE_NATIVE", (what));           \
      return NULL;                                                 \
    }                                                              \
  } while (0)

static napi_value buffer_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad call");
  if (argc != 1) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "bufferAddress takes one typed array");
    return NULL;
  }
  bool is_typed = false;
  CHECK_OK(env, napi_is_typedarray(env, argv[0], &is_typed), "type check failed");
  if (!is_typed) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "bufferAddress takes one typed array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  napi_value arraybuffer;
  size_t byte_offset = 0;
  CHECK_OK(env,
           napi_get_typedarray_info(env, argv[0], &type, &length, &data, &arraybuffer, &byte_offset),
           "typed array info failed");
  napi_value result;
  CHECK_OK(env, napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &result), "bigint failed");
  return result;
}

/* Throws an Error with `code`, a numeric `errno` and the message "<what>: <strerror>". */
static napi_value throw_errno(napi_env env, const char *code_text, const char *what, int err) {
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_value code, message, error, errno_value;
  CHECK_OK(env, napi_create_string_utf8(env, code_text, NAPI_AUTO_LENGTH, &code), "string failed");
  CHECK_OK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message), "string failed");
  CHECK_OK(env, napi_create_error(env, code, message, &error), "error failed");
  CHECK_OK(env, napi_create_int32(env, err, &errno_value), "errno failed");
  CHECK_OK(env, napi_set_named_property(env, error, "errno", errno_value), "set errno failed");
  napi_throw(env, error);
  return NULL;
}

/* Reads `value` as an integer in [min, INT32_MAX]; throws a RangeError with `what` otherwise. */
static bool int_argument(napi_env env, napi_value value, int32_t min, const char *what, int32_t *out) {
  napi_valuetype kind;
  double number = 0;
  if (napi_typeof(env, value, &kind) != napi_ok || kind != napi_number ||
      napi_get_value_double(env, value, &number) != napi_ok ||
      !(number >= (double)min && number <= 2147483647.0) || number != (double)(int32_t)number) {
    napi_throw_range_error(env, "VMLEASE_NATIVE", what);
    return false;
  }
  *out = (int32_t)number;
  return true;
}

static napi_value pidfd_open_call(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad call");
  if (argc != 1) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "pidfdOpen takes one pid");
    return NULL;
  }
  int32_t pid = 0;
  if (!int_argument(env, argv[0], 1, "pidfdOpen: pid must be an integer >= 1", &pid)) return NULL;
  long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0U); /* the kernel sets O_CLOEXEC */
  if (fd < 0) {
    int err = errno;
    char text[64];
    snprintf(text, sizeof text, "pidfd_open(%d) failed", (int)pid);
    return throw_errno(env, "VMLEASE_PIDFD", text, err);
  }
  napi_value result;
  CHECK_OK(env, napi_create_int32(env, (int32_t)fd, &result), "int failed");
  return result;
}

static napi_value pidfd_send_signal_call(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad call");
  if (argc != 2) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "pidfdSendSignal takes a pidfd and a signal number");
    return NULL;
  }
  int32_t fd = 0, signo = 0;
  if (!int_argument(env, argv[0], 0, "pidfdSendSignal: pidfd must be an integer >= 0", &fd)) return NULL;
  if (!int_argument(env, argv[1], 1, "pidfdSendSignal: signal must be an integer >= 1", &signo)) return NULL;
  if (syscall(SYS_pidfd_send_signal, fd, signo, NULL, 0U) != 0) {
    int err = errno;
    char text[64];
    snprintf(text, sizeof text, "pidfd_send_signal(%d, %d) failed", (int)fd, (int)signo);
    return throw_errno(env, "VMLEASE_PIDFD", text, err);
  }
  return NULL;
}

static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad call");
  if (argc != 1) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "peerCredentials takes one file descriptor");
    return NULL;
  }
  int32_t fd = 0;
  if (!int_argument(env, argv[0], 0, "peerCredentials: fd must be an integer >= 0", &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    int err = errno;
    char text[160];
    snprintf(text, sizeof text, "getsockopt(%d, SO_PEERCRED) failed", fd);
    return throw_errno(env, "VMLEASE_PEERCRED", text, err);
  }
  if (len != sizeof cred) {
    napi_throw_error(env, "VMLEASE_NATIVE", "getsockopt(SO_PEERCRED) returned a short struct ucred");
    return NULL;
  }
  napi_value result, pid, uid, gid;
  CHECK_OK(env, napi_create_object(env, &result), "object failed");
  CHECK_OK(env, napi_create_int64(env, (int64_t)cred.pid, &pid), "pid failed");
  CHECK_OK(env, napi_create_uint32(env, (uint32_t)cred.uid, &uid), "uid failed");
  CHECK_OK(env, napi_create_uint32(env, (uint32_t)cred.gid, &gid), "gid failed");
  CHECK_OK(env, napi_set_named_property(env, result, "pid", pid), "set pid failed");
  CHECK_OK(env, napi_set_named_property(env, result, "uid", uid), "set uid failed");
  CHECK_OK(env, napi_set_named_property(env, result, "gid", gid), "set gid failed");
  return result;
}

static int export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "bufferAddress", buffer_address)) return NULL;
  if (!export_function(env, exports, "peerCredentials", peer_credentials)) return NULL;
  if (!export_function(env, exports, "pidfdOpen", pidfd_open_call)) return NULL;
  if (!export_function(env, exports, "pidfdSendSignal", pidfd_send_signal_call)) return NULL;
  return exports;
}
