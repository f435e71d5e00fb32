/* Every suite, in the order they run. One line per test/test_*.c. */
SUITE(error)
SUITE(alloc)
SUITE(certgen)
SUITE(tls)
SUITE(mock)
