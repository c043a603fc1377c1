{
  "targets": [
    {
      "target_name": "vnetd_pcap",
      "sources": ["vnetd_pcap.c", "fastpath.c", "udp_socket.c", "../../links/aead-native/vnetd_session.c"],
      "include_dirs": ["../../links/aead-native"],
      "libraries": ["-lpcap"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
