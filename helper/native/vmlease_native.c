/*
 * vmlease_native: the few kernel facts Node cannot tell us.
 *
 * bufferAddress(view) returns the address of a typed array's first byte as a
 * BigInt. The storage layer asserts with it that every O_DIRECT buffer is
 * sector-aligned: the development kernel accepts some misaligned direct I/O
 * that production kernels refuse, so only an explicit check catches the bug.
 *
 * Everything here is Node-API (ABI stable) and context-aware, so worker
 * threads may load it.
 */
#include <node_api.h>
#include <stdint.h>

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

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "bufferAddress", NAPI_AUTO_LENGTH, buffer_address, NULL, &fn) != napi_ok) {
    return NULL;
  }
  if (napi_set_named_property(env, exports, "bufferAddress", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}
