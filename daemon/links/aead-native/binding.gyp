{
  "targets": [
    {
      "target_name": "vnetd_aead",
      "sources": ["vnetd_aead.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
