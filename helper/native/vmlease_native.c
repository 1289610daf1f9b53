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
#include <sys/types.h>

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

static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad call");
  if (argc != 1) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "peerCredentials takes one file descriptor");
    return NULL;
  }
  napi_valuetype kind;
  CHECK_OK(env, napi_typeof(env, argv[0], &kind), "type check failed");
  if (kind != napi_number) {
    napi_throw_type_error(env, "VMLEASE_NATIVE", "peerCredentials takes one file descriptor");
    return NULL;
  }
  double fd_value = 0;
  CHECK_OK(env, napi_get_value_double(env, argv[0], &fd_value), "number read failed");
  if (!(fd_value >= 0 && fd_value <= 2147483647.0) || fd_value != (double)(int32_t)fd_value) {
    napi_throw_range_error(env, "VMLEASE_NATIVE", "peerCredentials: fd must be an integer >= 0");
    return NULL;
  }
  int fd = (int)fd_value;
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    int err = errno;
    char text[160];
    snprintf(text, sizeof text, "getsockopt(%d, SO_PEERCRED) failed: %s", fd, strerror(err));
    napi_value code, message, error, errno_value;
    CHECK_OK(env, napi_create_string_utf8(env, "VMLEASE_PEERCRED", NAPI_AUTO_LENGTH, &code), "string failed");
    CHECK_OK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message), "string failed");
    CHECK_OK(env, napi_create_error(env, code, message, &error), "error failed");
    CHECK_OK(env, napi_create_int32(env, err, &errno_value), "errno failed");
    CHECK_OK(env, napi_set_named_property(env, error, "errno", errno_value), "set errno failed");
    napi_throw(env, error);
    return NULL;
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
  return exports;
}
