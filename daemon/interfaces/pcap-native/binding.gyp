{
  "targets": [
    {
      "target_name": "vnetd_pcap",
      "sources": ["vnetd_pcap.c"],
      "libraries": ["-lpcap"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
