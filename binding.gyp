{
  "targets": [
    {
      "target_name": "vmlease_native",
      "sources": ["helper/native/vmlease_native.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
