// Checks for OpenSSL calls of the wire layer (hmac.cc, record_cipher.cc). Their algorithms
// are built into OpenSSL and every argument is valid, so a failure can only mean a broken
// installation: it is reported and the process aborts, rather than a Status being
// threaded through every record.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace gangmig::wire {

// Prints "gangmig: OpenSSL <what> failed (<algorithm>)" and aborts.
[[noreturn]] inline void OpenSslDie(const char* algorithm, const char* what) {
  std::fprintf(stderr, "gangmig: OpenSSL %s failed (%s)\n", what, algorithm);
  std::abort();
}

// OpenSSL's convention: 1 is success.
inline void OpenSslCheck(const char* algorithm, int rc, const char* what) {
  if (rc != 1) OpenSslDie(algorithm, what);
}

}  // namespace gangmig::wire
