/* TLS without I/O over mbedTLS (see tls.h). Layer 2: never includes uv.h.
 *
 * mbedTLS talks to memory through its BIO callbacks: recv takes from the bytes apns__tls_feed copied in and says
 * WANT_READ when they run out; send appends to one growable output buffer and never blocks. Everything a burst
 * of writes produces lands in that one buffer, which apns__tls_take_output hands over whole: one uv_write per
 * burst, no copy. Errors are sticky: once the connection has failed, every call returns the same error. */
#include "tls.h"

#include "alloc.h"
#include "errbuf.h"
#include "mbedtls_compat.h"

#include <apns/common.h>
#include <errno.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The CA bundle a client trusts by default when it was built with one (meson -Dca_bundle=PATH); empty: search. */
#ifndef APNS_CA_BUNDLE
#define APNS_CA_BUNDLE ""
#endif
/* 0.9.2342.19200300.100.1.1 (userId): Apple puts the topic there. */
#define OID_UID "\x09\x92\x26\x89\x93\xF2\x2C\x64\x01\x01"
#define ERR_LEN 512

struct apns__tls_config {
  atomic_int refs;
  int server;
  int verify; /* client: verify the server; server: require client certificates */
  mbedtls_ssl_config conf;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt ca;
  mbedtls_x509_crt own_cert;
  mbedtls_pk_context own_key;
  char *alpn_copy;
  const char *alpn[2]; /* NULL-terminated list, as mbedtls_ssl_conf_alpn_protocols keeps it */
  int suites[16];      /* 0-terminated, as mbedtls_ssl_conf_ciphersuites keeps it */
};

struct apns__tls {
  mbedtls_ssl_context ssl;
  apns__tls_config *cfg;
  char *hostname;
  uint8_t *in; /* fed ciphertext; [in_off, in_len) not yet given to mbedTLS */
  size_t in_off, in_len, in_cap;
  uint8_t *out; /* ciphertext to send, lazily allocated, handed over whole */
  size_t out_len, out_cap;
  int done;       /* handshake complete and h2 agreed (TLS 1.3 client: and the server's first record read) */
  int confirming; /* TLS 1.3 client: our Finished is sent; waiting for the server's first record or its alert */
  int early_len;  /* 1 when early holds the first plaintext byte, read while confirming */
  uint8_t early;
  int fatal; /* sticky error, 0 while healthy */
  int nomem; /* the send callback could not grow the output buffer */
  char *peer_uid;
  char err[ERR_LEN];
};

/* ---- messages ---- */

static void mbed_words(int ret, char *out, size_t len) {
  mbedtls_strerror(ret, out, len);
}

/* Writes "<what>: <mbedTLS's words> (-0x....)" into errbuf and returns err: the one shape of every message that
 * carries an mbedTLS error. A positive ret is the count of certificates mbedTLS could not parse
 * (mbedtls_x509_crt_parse*), 0 a parse that found none. */
static int mbed_errbuf(char *errbuf, size_t errlen, int err, int ret, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int mbed_errbuf(char *errbuf, size_t errlen, int err, int ret, const char *fmt, ...) {
  char what[320], words[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (ret > 0) {
    apns__errbuf(errbuf, errlen, "%s: %d certificate%s could not be parsed", what, ret, ret == 1 ? "" : "s");
  } else if (ret == 0) {
    apns__errbuf(errbuf, errlen, "%s: no certificate in it", what);
  } else {
    mbed_words(ret, words, sizeof words);
    apns__errbuf(errbuf, errlen, "%s: %s (-0x%04x)", what, words, (unsigned)-ret);
  }
  return err;
}

/* Checked before mbedTLS reads a file: it reports only "read/write of file failed", and on a directory or a huge
 * file it asks calloc for the size ftell gave (SIZE_MAX for a directory). The message names the file. */
#define MAX_FILE_SIZE (16 * 1024 * 1024)
static int check_file(const char *path, const char *what, int err, char *errbuf, size_t errlen) {
  struct stat st;
  const char *problem = NULL;
  if (stat(path, &st) != 0 || access(path, R_OK) != 0)
    problem = strerror(errno);
  else if (!S_ISREG(st.st_mode))
    problem = S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file";
  else if (st.st_size > MAX_FILE_SIZE)
    problem = "larger than 16 MiB";
  if (problem == NULL) return 0;
  apns__errbuf(errbuf, errlen, "cannot load %s %s: %s", what, path, problem);
  return err;
}

/* ---- trust anchors ---- */

/* Where systems keep their CA bundle (PEM), in the order tried. The first that is a readable file is the one. */
static const char *const ca_bundle_paths[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Arch, Gentoo; Alpine's package */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL, CentOS, Amazon Linux */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* Fedora, RHEL 7+: where the above points */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE, SLES */
    "/etc/ssl/cert.pem",                                 /* Alpine, macOS (the system roots), FreeBSD, OpenBSD */
    "/usr/local/share/certs/ca-root-nss.crt",            /* FreeBSD's ca_root_nss */
    "/opt/homebrew/etc/ca-certificates/cert.pem",        /* macOS, Homebrew on Apple silicon */
    "/usr/local/etc/ca-certificates/cert.pem",           /* macOS, Homebrew on Intel */
    NULL,
};

const char *const *apns__tls_ca_bundle_paths(void) {
  return ca_bundle_paths;
}

const char *apns__tls_find_ca_bundle(const char *const *paths) {
  for (; *paths != NULL; paths++) {
    struct stat st;
    if (stat(*paths, &st) == 0 && S_ISREG(st.st_mode) && access(*paths, R_OK) == 0) return *paths;
  }
  return NULL;
}

/* A PEM or DER file of CA certificates. A positive return of mbedTLS counts certificates that failed to parse; a
 * system bundle may hold a few that mbedTLS cannot read, which is fine as long as some loaded. */
static int load_ca_file(apns__tls_config *cfg, const char *file, const char *what, char *errbuf, size_t errlen) {
  int ret;
  if ((ret = check_file(file, what, APNS_EBADCERT, errbuf, errlen))) return ret;
  ret = mbedtls_x509_crt_parse_file(&cfg->ca, file);
  if (ret < 0 || cfg->ca.version == 0)
    return mbed_errbuf(errbuf, errlen, APNS_EBADCERT, ret, "cannot load %s %s", what, file);
  return 0;
}

/* SSL_CERT_DIR: directories separated by ':', as OpenSSL reads it; one that does not exist is skipped. */
static int load_ca_dirs(apns__tls_config *cfg, const char *dirs, char *errbuf, size_t errlen) {
  char dir[1024];
  for (const char *p = dirs; *p != '\0';) {
    size_t n = strcspn(p, ":");
    if (n > 0 && n < sizeof dir) {
      memcpy(dir, p, n);
      dir[n] = '\0';
      struct stat st;
      if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
          apns__errbuf(errbuf, errlen, "cannot load CA directory %s (SSL_CERT_DIR): not a directory", dir);
          return APNS_EBADCERT;
        }
        int ret = mbedtls_x509_crt_parse_path(&cfg->ca, dir);
        if (ret < 0)
          return mbed_errbuf(errbuf, errlen, APNS_EBADCERT, ret, "cannot load CA directory %s (SSL_CERT_DIR)", dir);
      }
    }
    p += n;
    if (*p == ':') p++;
  }
  return 0;
}

/* A client's default trust: SSL_CERT_FILE and SSL_CERT_DIR when either is set (as OpenSSL, curl and Go read them),
 * else the bundle the library was built with, else the first of ca_bundle_paths. */
static int load_system_ca(apns__tls_config *cfg, char *errbuf, size_t errlen) {
  const char *env_file = getenv("SSL_CERT_FILE"), *env_dir = getenv("SSL_CERT_DIR");
  int ret;
  if (env_file != NULL && *env_file == '\0') env_file = NULL;
  if (env_dir != NULL && *env_dir == '\0') env_dir = NULL;
  if (env_file != NULL || env_dir != NULL) {
    if (env_file != NULL && (ret = load_ca_file(cfg, env_file, "CA file (SSL_CERT_FILE)", errbuf, errlen)))
      return ret;
    if (env_dir != NULL && (ret = load_ca_dirs(cfg, env_dir, errbuf, errlen))) return ret;
    if (cfg->ca.version == 0) {
      apns__errbuf(errbuf, errlen, "no CA certificate found in SSL_CERT_DIR %s", env_dir);
      return APNS_EBADCERT;
    }
    return 0;
  }
  if (APNS_CA_BUNDLE[0] != '\0') return load_ca_file(cfg, APNS_CA_BUNDLE, "CA file", errbuf, errlen);
  const char *file = apns__tls_find_ca_bundle(ca_bundle_paths);
  if (file == NULL) {
    char tried[1024] = "";
    for (const char *const *p = ca_bundle_paths; *p != NULL; p++)
      snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", p == ca_bundle_paths ? "" : ", ", *p);
    apns__errbuf(errbuf, errlen,
                 "no system CA bundle found (tried %s): name one with ca_file or the SSL_CERT_FILE variable", tried);
    return APNS_EBADCERT;
  }
  return load_ca_file(cfg, file, "CA file", errbuf, errlen);
}

static int load_ca(apns__tls_config *cfg, const apns__tls_options *opts, char *errbuf, size_t errlen) {
  int ret;
  if (opts->ca_file != NULL) return load_ca_file(cfg, opts->ca_file, "CA file", errbuf, errlen);
  if (opts->ca_pem != NULL) {
    ret = mbedtls_x509_crt_parse(&cfg->ca, (const unsigned char *)opts->ca_pem, strlen(opts->ca_pem) + 1);
    if (ret < 0 || cfg->ca.version == 0)
      return mbed_errbuf(errbuf, errlen, APNS_EBADCERT, ret, "cannot load CA certificates from ca_pem");
    return 0;
  }
  return load_system_ca(cfg, errbuf, errlen);
}

/* ---- cipher suites ---- */

/* HTTP/2 over TLS 1.2 must use an ephemeral key exchange and an AEAD cipher (RFC 9113 9.2.2: the rest are on its
 * block list, and a peer may refuse the connection with INADEQUATE_SECURITY); every TLS 1.3 suite qualifies.
 * ChaCha20-Poly1305 comes first: measured with mbedTLS 2.28.3 and 3.6.6 on x86-64 with AES-NI, it encrypted
 * 512-byte and 16 KiB records 1.15-1.35x as fast as AES-128-GCM (mbedTLS's GHASH is the slow half), and AES-128
 * before AES-256. Both ends use this list, and a TLS 1.2 server picks by its own order. Suites this mbedTLS does
 * not have are left out. */
static const int aead_suites[] = {
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
    MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
#endif
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};

static int conf_suites(apns__tls_config *cfg, char *errbuf, size_t errlen) {
  size_t n = 0;
  for (size_t i = 0; i < sizeof aead_suites / sizeof aead_suites[0]; i++)
    if (mbedtls_ssl_ciphersuite_from_id(aead_suites[i]) != NULL) cfg->suites[n++] = aead_suites[i];
  cfg->suites[n] = 0;
  if (n == 0) {
    apns__errbuf(errbuf, errlen,
                 "this mbedTLS has none of the cipher suites HTTP/2 allows (ECDHE with AES-GCM or "
                 "ChaCha20-Poly1305)");
    return APNS_ETLS;
  }
  mbedtls_ssl_conf_ciphersuites(&cfg->conf, cfg->suites);
  return 0;
}

const int *apns__tls_config_ciphersuites(const apns__tls_config *cfg) {
  return cfg->suites;
}

const char *apns__tls_ciphersuite(const apns__tls *tls) {
  return tls->done ? mbedtls_ssl_get_ciphersuite(&tls->ssl) : NULL;
}

/* ---- config ---- */
static int load_own_cert(apns__tls_config *cfg, const apns__tls_options *opts, char *errbuf, size_t errlen) {
  int ret;
  if (opts->cert_file != NULL) {
    if ((ret = check_file(opts->cert_file, "certificate file", APNS_EBADCERT, errbuf, errlen))) return ret;
    ret = mbedtls_x509_crt_parse_file(&cfg->own_cert, opts->cert_file);
    if (ret != 0)
      return mbed_errbuf(errbuf, errlen, APNS_EBADCERT, ret, "cannot load certificate file %s", opts->cert_file);
  } else {
    ret = mbedtls_x509_crt_parse(&cfg->own_cert, (const unsigned char *)opts->cert_pem, strlen(opts->cert_pem) + 1);
    if (ret != 0) return mbed_errbuf(errbuf, errlen, APNS_EBADCERT, ret, "cannot load certificate from cert_pem");
  }
  return 0;
}

static int load_own_key(apns__tls_config *cfg, const apns__tls_options *opts, char *errbuf, size_t errlen) {
  const char *pass = opts->key_passphrase;
  size_t pass_len = pass ? strlen(pass) : 0;
  char words[160], where[300];
  int ret;
  if (opts->key_file != NULL) {
    if ((ret = check_file(opts->key_file, "key file", APNS_EBADKEY, errbuf, errlen))) return ret;
    ret = apns__mbed_pk_parse_keyfile(&cfg->own_key, opts->key_file, pass, mbedtls_ctr_drbg_random, &cfg->drbg);
    snprintf(where, sizeof where, "key file %s", opts->key_file);
  } else {
    /* mbedTLS copies and decodes the PEM; its copies are zeroed by mbedTLS, the caller's text stays the caller's. */
    ret = apns__mbed_pk_parse_key(&cfg->own_key, (const unsigned char *)opts->key_pem, strlen(opts->key_pem) + 1,
                                  (const unsigned char *)pass, pass_len, mbedtls_ctr_drbg_random, &cfg->drbg);
    snprintf(where, sizeof where, "key_pem");
  }
  if (ret == 0) return 0;
  mbed_words(ret, words, sizeof words);
  if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
    apns__errbuf(errbuf, errlen, "cannot load %s: the key is encrypted and no passphrase was given (-0x%04x)", where,
                 (unsigned)-ret);
  } else if (ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
    apns__errbuf(errbuf, errlen, "cannot load %s: wrong passphrase (-0x%04x)", where, (unsigned)-ret);
  } else if (ret == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE) {
    /* mbedTLS 2.28 decrypts PKCS#8 PBES2 only with DES or 3DES, not with openssl's default AES-256-CBC. */
    apns__errbuf(errbuf, errlen,
                 "cannot load %s: its encryption is not supported by this mbedTLS (%s); re-encrypt it with "
                 "`openssl ec -aes128` or `openssl pkcs8 -topk8 -v2 des3`, or leave it unencrypted",
                 where, words);
  } else {
    /* A wrong passphrase does not always show as a mismatch: legacy PEM decryption with the wrong key yields
     * garbage that may fail later as bad ASN.1. */
    apns__errbuf(errbuf, errlen, "cannot load %s: %s (-0x%04x)%s", where, words, (unsigned)-ret,
                 pass ? " (was the passphrase right?)" : "");
  }
  return APNS_EBADKEY;
}

static int check_pair(apns__tls_config *cfg) {
  return apns__mbed_pk_check_pair(&cfg->own_cert.pk, &cfg->own_key, mbedtls_ctr_drbg_random, &cfg->drbg);
}

static void config_free(apns__tls_config *cfg) {
  mbedtls_ssl_config_free(&cfg->conf);
  mbedtls_x509_crt_free(&cfg->ca);
  mbedtls_x509_crt_free(&cfg->own_cert);
  mbedtls_pk_free(&cfg->own_key); /* zeroizes the key */
  mbedtls_ctr_drbg_free(&cfg->drbg);
  mbedtls_entropy_free(&cfg->entropy);
  apns__free(cfg->alpn_copy);
  apns__zero(cfg, sizeof *cfg);
  apns__free(cfg);
}

/* The combinations of options that cannot work, refused before anything is loaded. */
static int options_check(const apns__tls_options *opts, char *errbuf, size_t errlen) {
  int has_cert = opts->cert_file != NULL || opts->cert_pem != NULL;
  int has_key = opts->key_file != NULL || opts->key_pem != NULL;
  if (has_cert != has_key) {
    apns__errbuf(errbuf, errlen, "a certificate needs its private key and a key its certificate");
    return APNS_EINVAL;
  }
  if (opts->server && !has_cert) {
    apns__errbuf(errbuf, errlen, "a server needs a certificate and a private key");
    return APNS_EINVAL;
  }
  if (opts->server && opts->insecure_skip_verify) {
    apns__errbuf(errbuf, errlen, "insecure_skip_verify is for clients only");
    return APNS_EINVAL;
  }
  if (opts->alpn != NULL && strlen(opts->alpn) > 255) {
    apns__errbuf(errbuf, errlen, "an ALPN protocol name is at most 255 bytes");
    return APNS_EINVAL;
  }
  return 0;
}

/* Our certificate and its key, which must match. */
static int load_own_pair(apns__tls_config *cfg, const apns__tls_options *opts, char *errbuf, size_t errlen) {
  int ret;
  if ((ret = load_own_cert(cfg, opts, errbuf, errlen))) return ret;
  if ((ret = load_own_key(cfg, opts, errbuf, errlen))) return ret;
  if ((ret = check_pair(cfg)) != 0)
    return mbed_errbuf(errbuf, errlen, APNS_EBADKEY, ret, "the private key %s%s does not match the certificate %s%s",
                       opts->key_file ? "in " : "from key_pem", opts->key_file ? opts->key_file : "",
                       opts->cert_file ? "in " : "from cert_pem", opts->cert_file ? opts->cert_file : "");
  if ((ret = mbedtls_ssl_conf_own_cert(&cfg->conf, &cfg->own_cert, &cfg->own_key)) != 0)
    return mbed_errbuf(errbuf, errlen, APNS_ETLS, ret, "mbedtls_ssl_conf_own_cert");
  return 0;
}

/* What every session of the config speaks: TLS 1.2 or later without renegotiation, the AEAD suites, verification
 * as asked, and ALPN. */
static int conf_protocol(apns__tls_config *cfg, const apns__tls_options *opts, int want_ca, char *errbuf,
                         size_t errlen) {
  int ret;
  mbedtls_ssl_conf_rng(&cfg->conf, mbedtls_ctr_drbg_random, &cfg->drbg);
#if APNS__MBEDTLS3
  mbedtls_ssl_conf_min_tls_version(&cfg->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(&cfg->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
  mbedtls_ssl_conf_renegotiation(&cfg->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
  if ((ret = conf_suites(cfg, errbuf, errlen)) != 0) return ret;
  cfg->verify = cfg->server ? want_ca : !opts->insecure_skip_verify;
  mbedtls_ssl_conf_authmode(&cfg->conf, cfg->verify ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
  if (want_ca) mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);

  cfg->alpn[0] = cfg->alpn_copy ? cfg->alpn_copy : "h2";
  cfg->alpn[1] = NULL;
  if (cfg->alpn[0][0] != '\0' && (ret = mbedtls_ssl_conf_alpn_protocols(&cfg->conf, cfg->alpn)) != 0)
    return mbed_errbuf(errbuf, errlen, APNS_ETLS, ret, "mbedtls_ssl_conf_alpn_protocols");
  return 0;
}

int apns__tls_config_new(apns__tls_config **out, const apns__tls_options *opts, char *errbuf, size_t errlen) {
  static const char pers[] = "libapns tls";
  int ret;

  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (out == NULL || opts == NULL) {
    apns__errbuf(errbuf, errlen, "out and opts must not be NULL");
    return APNS_EINVAL;
  }
  *out = NULL;
  if ((ret = options_check(opts, errbuf, errlen)) != 0) return ret;

  /* mbedTLS 3: TLS 1.3's key schedule runs on PSA, which must be started first. */
  if ((ret = apns__mbed_crypto_init()) != 0) {
    apns__errbuf(errbuf, errlen, "cannot start mbedTLS's PSA crypto (psa_crypto_init: %d)", ret);
    return APNS_ETLS;
  }

  apns__tls_config *cfg = apns__calloc(1, sizeof *cfg);
  if (cfg == NULL) {
    apns__errbuf(errbuf, errlen, "out of memory");
    return APNS_ENOMEM;
  }
  atomic_init(&cfg->refs, 1);
  cfg->server = opts->server != 0;
  mbedtls_ssl_config_init(&cfg->conf);
  mbedtls_x509_crt_init(&cfg->ca);
  mbedtls_x509_crt_init(&cfg->own_cert);
  mbedtls_pk_init(&cfg->own_key);
  mbedtls_entropy_init(&cfg->entropy);
  mbedtls_ctr_drbg_init(&cfg->drbg);

  if (opts->alpn != NULL) {
    cfg->alpn_copy = apns__strdup(opts->alpn);
    if (cfg->alpn_copy == NULL) {
      apns__errbuf(errbuf, errlen, "out of memory");
      ret = APNS_ENOMEM;
      goto fail;
    }
  }

  ret = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func, &cfg->entropy, (const unsigned char *)pers,
                              sizeof pers - 1);
  if (ret) {
    ret = mbed_errbuf(errbuf, errlen, APNS_ETLS, ret, "cannot seed the random generator");
    goto fail;
  }
  ret = mbedtls_ssl_config_defaults(&cfg->conf, cfg->server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret) {
    ret = mbed_errbuf(errbuf, errlen, APNS_ETLS, ret, "mbedtls_ssl_config_defaults");
    goto fail;
  }

  /* Trust anchors: a client loads them unless told to skip verification (then only if given); a server only when
   * it is to require client certificates. */
  int want_ca = cfg->server ? (opts->ca_file != NULL || opts->ca_pem != NULL)
                            : (!opts->insecure_skip_verify || opts->ca_file != NULL || opts->ca_pem != NULL);
  if (want_ca && (ret = load_ca(cfg, opts, errbuf, errlen))) goto fail;
  if ((opts->cert_file != NULL || opts->cert_pem != NULL) && (ret = load_own_pair(cfg, opts, errbuf, errlen)))
    goto fail;
  if ((ret = conf_protocol(cfg, opts, want_ca, errbuf, errlen)) != 0) goto fail;

  *out = cfg;
  return 0;
fail:
  config_free(cfg);
  return ret;
}

apns__tls_config *apns__tls_config_ref(apns__tls_config *cfg) {
  if (cfg != NULL) atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
  return cfg;
}

void apns__tls_config_unref(apns__tls_config *cfg) {
  if (cfg == NULL) return;
  if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1) config_free(cfg);
}

/* ---- memory BIO ---- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  apns__tls *tls = ctx;
  if (len > tls->out_cap - tls->out_len) {
    size_t cap = tls->out_cap ? tls->out_cap : 4096;
    while (cap - tls->out_len < len) cap *= 2;
    uint8_t *p = apns__realloc(tls->out, cap);
    if (p == NULL) {
      tls->nomem = 1;
      return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    }
    tls->out = p;
    tls->out_cap = cap;
  }
  memcpy(tls->out + tls->out_len, buf, len);
  tls->out_len += len;
  return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  apns__tls *tls = ctx;
  size_t avail = tls->in_len - tls->in_off;
  if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (len > avail) len = avail;
  memcpy(buf, tls->in + tls->in_off, len);
  tls->in_off += len;
  if (tls->in_off == tls->in_len) {
    tls->in_off = tls->in_len = 0;
    /* A burst of input must not pin a large buffer for the connection's life: idle connections stay small. */
    if (tls->in_cap > 16384) {
      apns__free(tls->in);
      tls->in = NULL;
      tls->in_cap = 0;
    }
  }
  return (int)len;
}

/* ---- connection ---- */

int apns__tls_new(apns__tls **out, apns__tls_config *cfg, const char *hostname) {
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (cfg == NULL) return APNS_EINVAL;
  /* mbedTLS 2.28 skips the host name check when no name is set: refuse rather than verify half. */
  if (!cfg->server && cfg->verify && (hostname == NULL || *hostname == '\0')) return APNS_EINVAL;

  apns__tls *tls = apns__calloc(1, sizeof *tls);
  if (tls == NULL) return APNS_ENOMEM;
  mbedtls_ssl_init(&tls->ssl);
  int ret;
  if (!cfg->server && hostname != NULL) {
    tls->hostname = apns__strdup(hostname);
    if (tls->hostname == NULL) {
      ret = APNS_ENOMEM;
      goto fail;
    }
  }
  /* mbedTLS allocates its two record buffers here (about 16.7 KiB each), with its own calloc. */
  if ((ret = mbedtls_ssl_setup(&tls->ssl, &cfg->conf)) != 0) {
    ret = ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? APNS_ENOMEM : APNS_ETLS;
    goto fail;
  }
  if (tls->hostname != NULL && mbedtls_ssl_set_hostname(&tls->ssl, tls->hostname) != 0) {
    ret = APNS_EINVAL;
    goto fail;
  }
  mbedtls_ssl_set_bio(&tls->ssl, tls, bio_send, bio_recv, NULL);
  tls->cfg = apns__tls_config_ref(cfg);
  *out = tls;
  return 0;
fail:
  mbedtls_ssl_free(&tls->ssl);
  apns__free(tls->hostname);
  apns__free(tls);
  return ret;
}

void apns__tls_free(apns__tls *tls) {
  if (tls == NULL) return;
  mbedtls_ssl_free(&tls->ssl); /* zeroizes session keys and record buffers */
  apns__tls_config_unref(tls->cfg);
  if (tls->in != NULL) apns__zero(tls->in, tls->in_cap);
  apns__free(tls->in);
  apns__free(tls->out);
  apns__free(tls->hostname);
  apns__free(tls->peer_uid);
  apns__free(tls);
}

int apns__tls_feed(apns__tls *tls, const uint8_t *data, size_t len) {
  if (len == 0) return 0;
  if (tls->in_off > 0) { /* compact: what mbedTLS took is gone */
    memmove(tls->in, tls->in + tls->in_off, tls->in_len - tls->in_off);
    tls->in_len -= tls->in_off;
    tls->in_off = 0;
  }
  if (len > tls->in_cap - tls->in_len) {
    size_t cap = tls->in_cap ? tls->in_cap : 4096;
    while (cap - tls->in_len < len) cap *= 2;
    uint8_t *p = apns__realloc(tls->in, cap);
    if (p == NULL) return APNS_ENOMEM;
    tls->in = p;
    tls->in_cap = cap;
  }
  memcpy(tls->in + tls->in_len, data, len);
  tls->in_len += len;
  return 0;
}

static const char *alert_name(int alert) {
  static const struct {
    int code;
    const char *name;
  } names[] = {
      {10, "unexpected_message"},
      {20, "bad_record_mac"},
      {40, "handshake_failure"},
      {42, "bad_certificate"},
      {43, "unsupported_certificate"},
      {44, "certificate_revoked"},
      {45, "certificate_expired"},
      {46, "certificate_unknown"},
      {47, "illegal_parameter"},
      {48, "unknown_ca"},
      {50, "decode_error"},
      {51, "decrypt_error"},
      {70, "protocol_version"},
      {71, "insufficient_security"},
      {80, "internal_error"},
      {112, "unrecognized_name"},
      {116, "certificate_required"},
      {120, "no_application_protocol"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].code == alert) return names[i].name;
  return "unknown";
}

/* Latches err as the connection's error with a message from mbedTLS's words. */
static int fail(apns__tls *tls, int err, const char *what, int ret) {
  if (tls->nomem || ret == MBEDTLS_ERR_SSL_ALLOC_FAILED) {
    err = APNS_ENOMEM;
    snprintf(tls->err, sizeof tls->err, "%s: out of memory", what);
  } else if (ret != 0) {
    mbed_errbuf(tls->err, sizeof tls->err, err, ret, "%s", what);
  }
  tls->fatal = err;
  return err;
}

/* A fatal alert from the peer during the handshake (or, for a TLS 1.3 client, in place of the server's first
 * record: see confirm). */
static int handshake_alert(apns__tls *tls) {
  int alert = tls->ssl.APNS__MBED_PRIV(in_msg)[1];
  if (alert == MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL) {
    snprintf(tls->err, sizeof tls->err,
             "ALPN: the peer refused HTTP/2 (\"%s\" offered) with a no_application_protocol alert",
             tls->cfg->alpn[0]);
    tls->fatal = APNS_EALPN;
    return APNS_EALPN;
  }
  snprintf(tls->err, sizeof tls->err, "TLS handshake failed: the peer sent a fatal %s alert (%d)%s",
           alert_name(alert), alert,
           alert == 42 || alert == 46 || alert == 48 || alert == 116 ? ": it did not accept our certificate" : "");
  tls->fatal = APNS_ETLS;
  return APNS_ETLS;
}

/* TLS 1.3 ends the client's handshake with the client's own Finished: the server checks our certificate after
 * that, and a refusal arrives as an alert where its first record would be. So a TLS 1.3 client counts as connected
 * only once the server's first record is in (an HTTP/2 server sends its SETTINGS at once); the first byte is kept
 * for apns__tls_read. A refused certificate is then a failed handshake on either version, as the caller expects. */
static int confirm(apns__tls *tls) {
  for (;;) {
    int ret = mbedtls_ssl_read(&tls->ssl, &tls->early, 1);
    if (ret == 1) {
      tls->early_len = 1;
      tls->confirming = 0;
      tls->done = 1;
      return 0;
    }
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return 1;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;
#endif
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) return handshake_alert(tls);
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) ret = MBEDTLS_ERR_SSL_CONN_EOF;
    /* mbedTLS 3.6 as a server sends its refusal under the handshake keys, which the client has left: the client
     * reads a bad record. Either way the server did not take our certificate or our Finished. */
    /* With a certificate of ours, the refusal is the likely cause: say it as the TLS 1.2 alert path does, so that
     * the pool treats it as the permanent cause it is on either version. */
    if (tls->cfg->own_cert.version != 0)
      return fail(tls, APNS_ETLS,
                  "TLS handshake failed after our Finished (TLS 1.3): it did not accept our certificate (or our "
                  "Finished); the server's first record",
                  ret);
    return fail(tls, APNS_ETLS,
                "TLS handshake failed after our Finished (TLS 1.3, where a server refuses a client certificate): "
                "the server's first record",
                ret);
  }
}

static int is_tls13(const apns__tls *tls) {
#if APNS__MBEDTLS3 && defined(MBEDTLS_SSL_PROTO_TLS1_3)
  return mbedtls_ssl_get_version_number(&tls->ssl) == MBEDTLS_SSL_VERSION_TLS1_3;
#else
  (void)tls;
  return 0;
#endif
}

static int verify_failed(apns__tls *tls) {
  uint32_t flags = mbedtls_ssl_get_verify_result(&tls->ssl);
  char info[512], *p;
  info[0] = '\0';
  /* On a too-small buffer mbedTLS keeps what fit; use that. */
  if (mbedtls_x509_crt_verify_info(info, sizeof info, "", flags) <= 0 && info[0] == '\0')
    snprintf(info, sizeof info, "flags 0x%x", (unsigned)flags);
  /* One line per failed check: join them, and drop mbedTLS's capital. */
  while ((p = strrchr(info, '\n')) != NULL && p[1] == '\0') *p = '\0';
  for (p = info; (p = strchr(p, '\n')) != NULL;) *p = ';';
  if (info[0] >= 'A' && info[0] <= 'Z' && info[1] >= 'a' && info[1] <= 'z') info[0] = (char)(info[0] - 'A' + 'a');
  char extra[160] = "";
  if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
    snprintf(extra, sizeof extra, " (host name mismatch: the certificate is not for \"%s\")",
             tls->hostname ? tls->hostname : "");
  else if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
    snprintf(extra, sizeof extra, " (not issued by a trusted CA)");
  apns__errbuf(tls->err, sizeof tls->err, "%s certificate verification failed: %s%s",
               tls->cfg->server ? "client" : "server", info, extra);
  tls->fatal = APNS_ECERTVERIFY;
  return APNS_ECERTVERIFY;
}

int apns__tls_handshake(apns__tls *tls) {
  if (tls->fatal) return tls->fatal;
  if (tls->done) return 0;
  if (tls->confirming) return confirm(tls);
  int ret = mbedtls_ssl_handshake(&tls->ssl);
  if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return 1;
  if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) return verify_failed(tls);
  if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
    /* mbedTLS 2.28 fails here without telling the client, which would wait for a Finished that never comes.
     * RFC 5246 7.4.6: answer with a fatal handshake_failure. */
    mbedtls_ssl_send_alert_message(&tls->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
    snprintf(tls->err, sizeof tls->err, "client certificate verification failed: the client sent no certificate");
    tls->fatal = APNS_ECERTVERIFY;
    return APNS_ECERTVERIFY;
  }
  if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) return handshake_alert(tls);
  if (ret != 0) return fail(tls, APNS_ETLS, "TLS handshake failed", ret);

  const char *alpn = mbedtls_ssl_get_alpn_protocol(&tls->ssl);
  if (alpn == NULL || strcmp(alpn, "h2") != 0) {
    snprintf(tls->err, sizeof tls->err, "ALPN: the %s did not agree on HTTP/2 (h2); negotiated %s%s%s",
             tls->cfg->server ? "client" : "server", alpn ? "\"" : "no protocol", alpn ? alpn : "", alpn ? "\"" : "");
    tls->fatal = APNS_EALPN;
    return APNS_EALPN;
  }
  if (!tls->cfg->server && is_tls13(tls)) {
    tls->confirming = 1;
    return confirm(tls);
  }
  tls->done = 1;
  return 0;
}

int apns__tls_handshake_done(const apns__tls *tls) {
  return tls->done;
}

ssize_t apns__tls_read(apns__tls *tls, uint8_t *buf, size_t cap) {
  if (tls->fatal) return tls->fatal;
  if (!tls->done) return APNS_EINVAL;
  size_t total = 0;
  if (tls->early_len > 0 && cap > 0) {
    buf[0] = tls->early;
    tls->early_len = 0;
    total = 1;
  }
  while (total < cap) {
    int ret = mbedtls_ssl_read(&tls->ssl, buf + total, cap - total);
    if (ret > 0) {
      total += (size_t)ret;
      continue;
    }
    /* 0 would be end of transport, which a memory BIO never reports. */
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) break;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;
#endif
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      snprintf(tls->err, sizeof tls->err, "the peer closed the TLS connection (close_notify)");
      tls->fatal = APNS_ECLOSED;
    } else if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
      int alert = tls->ssl.APNS__MBED_PRIV(in_msg)[1];
      snprintf(tls->err, sizeof tls->err, "the peer sent a fatal %s alert (%d)", alert_name(alert), alert);
      tls->fatal = APNS_ETLS;
    } else {
      fail(tls, APNS_ETLS, "TLS read failed", ret);
    }
    /* Hand over what was read; the error comes with the next call. */
    return total > 0 ? (ssize_t)total : tls->fatal;
  }
  return (ssize_t)total;
}

int apns__tls_write(apns__tls *tls, const uint8_t *data, size_t len) {
  if (tls->fatal) return tls->fatal;
  if (!tls->done) return APNS_EINVAL;
  size_t off = 0;
  while (off < len) {
    /* At most one record (16 KiB of plaintext) per call; each lands in the output buffer at once. */
    int ret = mbedtls_ssl_write(&tls->ssl, data + off, len - off);
    if (ret > 0) {
      off += (size_t)ret;
      continue;
    }
    return fail(tls, APNS_ETLS, "TLS write failed", ret ? ret : MBEDTLS_ERR_SSL_INTERNAL_ERROR);
  }
  return 0;
}

void apns__tls_take_output(apns__tls *tls, uint8_t **buf, size_t *len) {
  if (tls->out_len == 0) {
    *buf = NULL;
    *len = 0;
    return;
  }
  *buf = tls->out;
  *len = tls->out_len;
  tls->out = NULL;
  tls->out_len = tls->out_cap = 0;
}

size_t apns__tls_output_size(const apns__tls *tls) {
  return tls->out_len;
}

int apns__tls_close_notify(apns__tls *tls) {
  if (tls->fatal && tls->fatal != APNS_ECLOSED) return tls->fatal;
  int ret = mbedtls_ssl_close_notify(&tls->ssl);
  if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_WRITE) return fail(tls, APNS_ETLS, "TLS close_notify failed", ret);
  return 0;
}

const char *apns__tls_error(const apns__tls *tls) {
  return tls->err;
}

const char *apns__tls_peer_uid(apns__tls *tls) {
  if (tls->peer_uid != NULL) return tls->peer_uid;
  if (!tls->done) return NULL;
  const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&tls->ssl);
  if (peer == NULL) return NULL;
  for (const mbedtls_x509_name *n = &peer->subject; n != NULL; n = n->next) {
    if (n->oid.len == sizeof OID_UID - 1 && memcmp(n->oid.p, OID_UID, n->oid.len) == 0) {
      tls->peer_uid = apns__strndup((const char *)n->val.p, n->val.len);
      return tls->peer_uid;
    }
  }
  return NULL;
}
