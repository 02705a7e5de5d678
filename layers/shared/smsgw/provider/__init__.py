"""The Guodu 企信通 HTTP interface: the wire protocol (``guodu``) and its client (``client``)."""
