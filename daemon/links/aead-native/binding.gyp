{
  "targets": [
    {
      "target_name": "vnetd_aead",
      "sources": ["vnetd_aead.c", "vnetd_session.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
