//! Integration tests: the real binary over real sockets.
