/* Throwaway certificates at run time (see certgen.h). Test and mock support, outside libapns.so; no uv.h.
 *
 * Names are built attribute by attribute (mbedtls_asn1_store_named_data) rather than from "CN=...,O=..." strings:
 * mbedTLS 2.28's string parser knows no UID attribute and escapes nothing but commas, and a topic is caller data.
 * mbedTLS 2.28 has no subjectAltName writer for certificates, so the extension's DER is written by hand. */
#include "certgen.h"

#include "alloc.h"
#include "errbuf.h"
#include "mbedtls_compat.h"
#include "secrets.h"

#include <apns/common.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/base64.h>
#include <mbedtls/cipher.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 0.9.2342.19200300.100.1.1 (userId), where Apple's push certificates carry the topic. */
#define OID_UID "\x09\x92\x26\x89\x93\xF2\x2C\x64\x01\x01"
/* 1.2.840.113635.100.6.3.1 and .2: Apple Push Notification service, development and production. */
#define OID_APPLE_PUSH_DEV "\x2A\x86\x48\x86\xF7\x63\x64\x06\x03\x01"
#define OID_APPLE_PUSH_PROD "\x2A\x86\x48\x86\xF7\x63\x64\x06\x03\x02"

#define PEM_MAX 4096

typedef struct {
  char *errbuf;
  size_t errlen;
} gen;

#define set_err(g, ...) apns__errbuf((g)->errbuf, (g)->errlen, __VA_ARGS__)

static int mbed_err(gen *g, const char *what, int ret) {
  char words[160];
  mbedtls_strerror(ret, words, sizeof words);
  set_err(g, "%s failed: %s (-0x%04x)", what, words, (unsigned)-ret);
  return APNS_ETLS;
}

/* The one random generator of tools/support and of those who link it (apns__certgen_rng), seeded from the
 * system's entropy on first use, and again in a forked child, which would otherwise repeat its parent's
 * numbers. */
static mbedtls_entropy_context rng_entropy;
static mbedtls_ctr_drbg_context rng_drbg;
static pid_t rng_pid; /* the process that seeded it; 0: not seeded */

static int rng_seed(void) {
  static const char pers[] = "libapns support";
  if (rng_pid == getpid()) return 0;
  if (rng_pid != 0) {
    mbedtls_ctr_drbg_free(&rng_drbg);
    mbedtls_entropy_free(&rng_entropy);
    rng_pid = 0;
  }
  mbedtls_entropy_init(&rng_entropy);
  mbedtls_ctr_drbg_init(&rng_drbg);
  int ret = mbedtls_ctr_drbg_seed(&rng_drbg, mbedtls_entropy_func, &rng_entropy, (const unsigned char *)pers,
                                  sizeof pers - 1);
  if (ret != 0) {
    mbedtls_ctr_drbg_free(&rng_drbg);
    mbedtls_entropy_free(&rng_entropy);
    return ret;
  }
  rng_pid = getpid();
  return 0;
}

int apns__certgen_rng(void *ctx, unsigned char *out, size_t len) {
  (void)ctx;
  int ret = rng_seed();
  return ret ? ret : mbedtls_ctr_drbg_random(&rng_drbg, out, len);
}

static int gen_init(gen *g, char *errbuf, size_t errlen) {
  g->errbuf = errbuf;
  g->errlen = errlen;
  int ret = rng_seed();
  return ret ? mbed_err(g, "seeding the random generator", ret) : 0;
}

/* For the test runner's check that no key reaches any output (secrets.h): the key's scalar and its SEC1 PEM (the
 * PKCS#8 form of token keys is recorded where it is made). */
static void record_key(mbedtls_pk_context *pk) {
  unsigned char d[32], pem[PEM_MAX];
#if MBEDTLS_VERSION_NUMBER >= 0x03060000 /* mbedtls_ecp_write_key is deprecated from 3.6 on */
  size_t dlen = 0;
  if (mbedtls_ecp_write_key_ext(mbedtls_pk_ec(*pk), &dlen, d, sizeof d) == 0 && dlen == sizeof d)
    apns__secret_record_bytes("ec-scalar", d, sizeof d);
#else
  if (mbedtls_ecp_write_key(mbedtls_pk_ec(*pk), d, sizeof d) == 0)
    apns__secret_record_bytes("ec-scalar", d, sizeof d);
#endif
  if (mbedtls_pk_write_key_pem(pk, pem, sizeof pem) == 0) apns__secret_record_pem("key-pem", (const char *)pem);
  apns__zero(d, sizeof d);
  apns__zero(pem, sizeof pem);
}

static int make_key(gen *g, mbedtls_pk_context *pk) {
  int ret = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (ret) return mbed_err(g, "mbedtls_pk_setup", ret);
  ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), apns__certgen_rng, NULL);
  if (ret) return mbed_err(g, "generating an EC P-256 key", ret);
  record_key(pk);
  return 0;
}

static int key_pem(gen *g, mbedtls_pk_context *pk, char **out) {
  unsigned char buf[PEM_MAX];
  int ret = mbedtls_pk_write_key_pem(pk, buf, sizeof buf);
  if (ret) {
    apns__zero(buf, sizeof buf);
    return mbed_err(g, "writing a private key", ret);
  }
  *out = apns__strdup((const char *)buf);
  apns__zero(buf, sizeof buf);
  if (*out == NULL) {
    set_err(g, "out of memory");
    return APNS_ENOMEM;
  }
  return 0;
}

/* Appends one attribute to a name list. mbedTLS writes the list head last, so attributes come out in the order
 * they are added. */
static int add_name(gen *g, mbedtls_asn1_named_data **list, const char *oid, size_t oid_len, const char *value) {
  mbedtls_asn1_named_data *cur =
      mbedtls_asn1_store_named_data(list, oid, oid_len, (const unsigned char *)value, strlen(value));
  if (cur == NULL) {
    set_err(g, "out of memory in mbedtls_asn1_store_named_data");
    return APNS_ETLS;
  }
  cur->val.tag = MBEDTLS_ASN1_UTF8_STRING;
  return 0;
}

#define ADD_NAME(g, list, oid, value) add_name((g), (list), (oid), sizeof(oid) - 1, (value))

static int ca_name(gen *g, mbedtls_asn1_named_data **list, const char *cn) {
  int ret;
  if ((ret = ADD_NAME(g, list, MBEDTLS_OID_AT_CN, cn))) return ret;
  return ADD_NAME(g, list, MBEDTLS_OID_AT_ORGANIZATION, "libapns test");
}

static void utc_stamp(char out[16], time_t t) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

/* Fields every certificate shares: version, random serial, validity, keys, signature hash. */
static int cert_common(gen *g, mbedtls_x509write_cert *crt, mbedtls_pk_context *subject_key,
                       mbedtls_pk_context *issuer_key, time_t not_before, time_t not_after) {
  unsigned char serial_bytes[16];
  char nb[16], na[16];
  int ret;

  mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(crt, subject_key);
  mbedtls_x509write_crt_set_issuer_key(crt, issuer_key);

  if ((ret = apns__certgen_rng(NULL, serial_bytes, sizeof serial_bytes))) return mbed_err(g, "random serial", ret);
  serial_bytes[0] = (unsigned char)((serial_bytes[0] & 0x7f) | 0x01); /* positive and non-zero, 16 bytes */
#if MBEDTLS_VERSION_NUMBER >= 0x03040000
  /* 3.4 deprecated the MPI form: serials are byte strings (up to 20 bytes, RFC 5280). */
  ret = mbedtls_x509write_crt_set_serial_raw(crt, serial_bytes, sizeof serial_bytes);
#else
  mbedtls_mpi serial;
  mbedtls_mpi_init(&serial);
  ret = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof serial_bytes);
  if (ret == 0) ret = mbedtls_x509write_crt_set_serial(crt, &serial);
  mbedtls_mpi_free(&serial);
#endif
  if (ret) return mbed_err(g, "setting the serial number", ret);

  utc_stamp(nb, not_before);
  utc_stamp(na, not_after);
  if ((ret = mbedtls_x509write_crt_set_validity(crt, nb, na))) return mbed_err(g, "setting the validity", ret);
  if ((ret = mbedtls_x509write_crt_set_subject_key_identifier(crt)))
    return mbed_err(g, "setting the subject key identifier", ret);
  if ((ret = mbedtls_x509write_crt_set_authority_key_identifier(crt)))
    return mbed_err(g, "setting the authority key identifier", ret);
  return 0;
}

static int cert_pem(gen *g, mbedtls_x509write_cert *crt, char **out) {
  unsigned char buf[PEM_MAX];
  int ret = mbedtls_x509write_crt_pem(crt, buf, sizeof buf, apns__certgen_rng, NULL);
  if (ret) return mbed_err(g, "writing a certificate", ret);
  *out = apns__strdup((const char *)buf);
  if (*out == NULL) {
    set_err(g, "out of memory");
    return APNS_ENOMEM;
  }
  return 0;
}

/* SubjectAltName ::= SEQUENCE OF GeneralName, with dNSName [2] IA5String and iPAddress [7] OCTET STRING, both
 * IMPLICIT. ASN.1 is written backwards from the end of buf: the last entry first. Returns the length, the DER at
 * buf + size - length; or a negative mbedTLS error. */
static int san_der(unsigned char *buf, size_t size, const char *dns, const unsigned char *ip, size_t ip_len) {
  unsigned char *p = buf + size;
  size_t len = 0;
  int ret;
  if (ip_len > 0) {
    size_t n = 0;
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_raw_buffer(&p, buf, ip, ip_len));
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_len(&p, buf, n));
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7));
    len += n;
  }
  if (dns != NULL) {
    size_t n = 0;
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_raw_buffer(&p, buf, (const unsigned char *)dns, strlen(dns)));
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_len(&p, buf, n));
    MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
    len += n;
  }
  MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
  MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  return (int)len;
}

static int make_ca(gen *g, mbedtls_pk_context *key, const char *cn, time_t nb, time_t na, char **pem) {
  mbedtls_x509write_cert crt;
  int ret;
  mbedtls_x509write_crt_init(&crt);
  if ((ret = make_key(g, key))) goto out;
  if ((ret = ca_name(g, &crt.APNS__MBED_PRIV(subject), cn))) goto out;
  if ((ret = ca_name(g, &crt.APNS__MBED_PRIV(issuer), cn))) goto out;
  if ((ret = cert_common(g, &crt, key, key, nb, na))) goto out;
  if ((ret = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, -1))) {
    ret = mbed_err(g, "setting basicConstraints", ret);
    goto out;
  }
  if ((ret = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN))) {
    ret = mbed_err(g, "setting keyUsage", ret);
    goto out;
  }
  ret = cert_pem(g, &crt, pem);
out:
  mbedtls_x509write_crt_free(&crt);
  return ret;
}

static int make_server(gen *g, mbedtls_pk_context *ca_key, const char *ca_cn, const char *host,
                       const unsigned char *ip, size_t ip_len, time_t nb, time_t na, char **cert, char **key_out) {
  mbedtls_x509write_cert crt;
  mbedtls_pk_context key;
  unsigned char san[512];
  int ret;
  mbedtls_x509write_crt_init(&crt);
  mbedtls_pk_init(&key);
  if ((ret = make_key(g, &key))) goto out;
  if ((ret = ADD_NAME(g, &crt.APNS__MBED_PRIV(subject), MBEDTLS_OID_AT_CN, host))) goto out;
  if ((ret = ADD_NAME(g, &crt.APNS__MBED_PRIV(subject), MBEDTLS_OID_AT_ORGANIZATION, "libapns test"))) goto out;
  if ((ret = ca_name(g, &crt.APNS__MBED_PRIV(issuer), ca_cn))) goto out;
  if ((ret = cert_common(g, &crt, &key, ca_key, nb, na))) goto out;
  if ((ret = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) ||
      (ret = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE))) {
    ret = mbed_err(g, "setting server certificate extensions", ret);
    goto out;
  }
  ret = san_der(san, sizeof san, host, ip, ip_len);
  if (ret < 0) {
    ret = mbed_err(g, "writing subjectAltName", ret);
    goto out;
  }
  ret = mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                            MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                            san + sizeof san - (size_t)ret, (size_t)ret);
  if (ret) {
    ret = mbed_err(g, "adding subjectAltName", ret);
    goto out;
  }
  if ((ret = cert_pem(g, &crt, cert))) goto out;
  ret = key_pem(g, &key, key_out);
out:
  mbedtls_pk_free(&key);
  mbedtls_x509write_crt_free(&crt);
  return ret;
}

static int make_client(gen *g, mbedtls_pk_context *ca_key, const char *ca_cn, const char *topic, time_t nb, time_t na,
                       char **cert, char **key_out) {
  static const unsigned char asn1_null[] = {MBEDTLS_ASN1_NULL, 0};
  static const char cn_prefix[] = "Apple Push Services: ";
  mbedtls_x509write_cert crt;
  mbedtls_pk_context key;
  char *cn = NULL;
  int ret;
  mbedtls_x509write_crt_init(&crt);
  mbedtls_pk_init(&key);
  if ((ret = make_key(g, &key))) goto out;
  cn = apns__malloc(sizeof cn_prefix + strlen(topic));
  if (cn == NULL) {
    set_err(g, "out of memory");
    ret = APNS_ENOMEM;
    goto out;
  }
  memcpy(cn, cn_prefix, sizeof cn_prefix - 1);
  strcpy(cn + sizeof cn_prefix - 1, topic);
  mbedtls_asn1_named_data **subject = &crt.APNS__MBED_PRIV(subject);
  if ((ret = ADD_NAME(g, subject, OID_UID, topic)) || (ret = ADD_NAME(g, subject, MBEDTLS_OID_AT_CN, cn)) ||
      (ret = ADD_NAME(g, subject, MBEDTLS_OID_AT_ORG_UNIT, "LIBAPNSTST")) ||
      (ret = ADD_NAME(g, subject, MBEDTLS_OID_AT_ORGANIZATION, "libapns test")) ||
      (ret = ADD_NAME(g, subject, MBEDTLS_OID_AT_COUNTRY, "US")))
    goto out;
  if ((ret = ca_name(g, &crt.APNS__MBED_PRIV(issuer), ca_cn))) goto out;
  if ((ret = cert_common(g, &crt, &key, ca_key, nb, na))) goto out;
  if ((ret = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) ||
      (ret = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) ||
      (ret = mbedtls_x509write_crt_set_extension(&crt, OID_APPLE_PUSH_DEV, sizeof OID_APPLE_PUSH_DEV - 1, 0,
                                                 asn1_null, sizeof asn1_null)) ||
      (ret = mbedtls_x509write_crt_set_extension(&crt, OID_APPLE_PUSH_PROD, sizeof OID_APPLE_PUSH_PROD - 1, 0,
                                                 asn1_null, sizeof asn1_null))) {
    ret = mbed_err(g, "setting client certificate extensions", ret);
    goto out;
  }
  if ((ret = cert_pem(g, &crt, cert))) goto out;
  ret = key_pem(g, &key, key_out);
out:
  apns__free(cn);
  mbedtls_pk_free(&key);
  mbedtls_x509write_crt_free(&crt);
  return ret;
}

static int valid_text(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || *s == 0x7f) return 0;
  return 1;
}

int apns__certgen(const apns__certgen_options *opts, apns__certgen_result *out, char *errbuf, size_t errlen) {
  static const apns__certgen_options defaults = {0};
  unsigned char ip[16];
  size_t ip_len = 0;
  mbedtls_pk_context ca_key, other_key;
  gen g;
  int ret;

  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (out == NULL) return APNS_EINVAL;
  memset(out, 0, sizeof *out);
  if (opts == NULL) opts = &defaults;
  const char *topic = opts->topic ? opts->topic : "com.example.app";
  const char *host = opts->server_host ? opts->server_host : "localhost";
  const char *ip_text = opts->server_ip ? opts->server_ip : "127.0.0.1";
  int days = opts->days > 0 ? opts->days : 3650;
  g.errbuf = errbuf;
  g.errlen = errlen;
  if (!valid_text(topic) || !valid_text(host) || strlen(topic) > 200 || strlen(host) > 253) {
    set_err(&g, "topic and server host must be 1-200 printable characters without spaces");
    return APNS_EINVAL;
  }
  if (*ip_text != '\0') {
    if (inet_pton(AF_INET, ip_text, ip) == 1) {
      ip_len = 4;
    } else if (inet_pton(AF_INET6, ip_text, ip) == 1) {
      ip_len = 16;
    } else {
      set_err(&g, "server_ip \"%s\" is not an IPv4 or IPv6 address", ip_text);
      return APNS_EINVAL;
    }
  }

  time_t now = time(NULL);
  time_t nb = now - 3600, na = now + (time_t)days * 86400;
  mbedtls_pk_init(&ca_key);
  mbedtls_pk_init(&other_key);
  if ((ret = gen_init(&g, errbuf, errlen))) goto out;
  if ((ret = make_ca(&g, &ca_key, "libapns test CA", nb, na, &out->ca_cert))) goto out;
  if ((ret = make_server(&g, &ca_key, "libapns test CA", host, ip, ip_len, nb,
                         opts->server_expired ? now - 86400 : na, &out->server_cert, &out->server_key)))
    goto out;
  if ((ret = make_client(&g, &ca_key, "libapns test CA", topic, nb, na, &out->client_cert, &out->client_key)))
    goto out;
  /* The same CN as the real CA, so only the signature tells them apart, as with a real impostor. */
  if (opts->other_ca && (ret = make_ca(&g, &other_key, "libapns test CA", nb, na, &out->other_ca_cert))) goto out;
  if (opts->token_key && (ret = apns__certgen_p8_key(&out->token_key, errbuf, errlen))) goto out;
out:
  mbedtls_pk_free(&other_key);
  mbedtls_pk_free(&ca_key);
  if (ret) apns__certgen_free(out);
  return ret;
}

static void free_key(char **pem) {
  if (*pem != NULL) {
    apns__zero(*pem, strlen(*pem));
    apns__free(*pem);
    *pem = NULL;
  }
}

void apns__certgen_free(apns__certgen_result *res) {
  if (res == NULL) return;
  free_key(&res->server_key);
  free_key(&res->client_key);
  free_key(&res->token_key);
  apns__free(res->ca_cert);
  apns__free(res->server_cert);
  apns__free(res->client_cert);
  apns__free(res->other_ca_cert);
  memset(res, 0, sizeof *res);
}

static int write_file(const char *dir, const char *name, const char *text, int mode, char *errbuf, size_t errlen) {
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
    apns__errbuf(errbuf, errlen, "path too long: %s/%s", dir, name);
    return APNS_EINVAL;
  }
  /* O_EXCL-free but mode-safe: unlink first so an existing file's wider mode is not kept. */
  if (unlink(path) != 0 && errno != ENOENT) goto fail;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) goto fail;
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      errno = e;
      goto fail;
    }
    off += (size_t)n;
  }
  if (close(fd) != 0) goto fail;
  return 0;
fail:;
  int e = errno;
  apns__errbuf(errbuf, errlen, "cannot write %s: %s", path, strerror(e));
  return -e;
}

int apns__certgen_write_dir(const char *dir, const apns__certgen_result *res, char *errbuf, size_t errlen) {
  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (dir == NULL || res == NULL || res->ca_cert == NULL) return APNS_EINVAL;
  const struct {
    const char *name;
    const char *text;
    int mode;
  } files[] = {
      {"ca.pem", res->ca_cert, 0644},
      {"server.pem", res->server_cert, 0644},
      {"server-key.pem", res->server_key, 0600},
      {"client.pem", res->client_cert, 0644},
      {"client-key.pem", res->client_key, 0600},
      {"other-ca.pem", res->other_ca_cert, 0644},
      {"token-key.p8", res->token_key, 0600},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    if (files[i].text == NULL) continue;
    int ret = write_file(dir, files[i].name, files[i].text, files[i].mode, errbuf, errlen);
    if (ret) return ret;
  }
  return 0;
}

/* ---- legacy PEM encryption (what `openssl ec -aes128` writes) ---- */

static void hex_upper(char *out, const unsigned char *in, size_t n) {
  static const char digits[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/* The key of key_pem as DER (at the start of der, *der_len bytes) and the PEM label its type goes under. */
static int key_der(gen *g, const char *key_pem, unsigned char der[PEM_MAX], size_t *der_len, const char **label) {
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  int ret = apns__mbed_pk_parse_key(&pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0,
                                    apns__certgen_rng, NULL);
  if (ret) {
    mbed_err(g, "parsing the key to encrypt", ret);
    ret = APNS_EBADKEY;
    goto out;
  }
  *label = mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA ? "RSA PRIVATE KEY" : "EC PRIVATE KEY";
  /* mbedtls_pk_write_key_der writes at the end of the buffer. */
  ret = mbedtls_pk_write_key_der(&pk, der, PEM_MAX);
  if (ret < 0) {
    ret = mbed_err(g, "writing the key", ret);
    goto out;
  }
  *der_len = (size_t)ret;
  memmove(der, der + PEM_MAX - *der_len, *der_len);
  ret = 0;
out:
  mbedtls_pk_free(&pk);
  return ret;
}

/* OpenSSL's EVP_BytesToKey with MD5, one round, as the legacy PEM encryption derives its key: the AES-128 key is
 * MD5(passphrase || first 8 bytes of the IV). */
static int pem_key_of_passphrase(gen *g, const char *passphrase, const unsigned char iv[16],
                                 unsigned char aes_key[16]) {
  unsigned char md5_in[256 + 8];
  size_t pass_len = strlen(passphrase);
  memcpy(md5_in, passphrase, pass_len);
  memcpy(md5_in + pass_len, iv, 8);
  int ret = mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_MD5), md5_in, pass_len + 8, aes_key);
  apns__zero(md5_in, sizeof md5_in);
  return ret ? mbed_err(g, "MD5", ret) : 0;
}

/* in under AES-128-CBC with PKCS#7 padding into out (room for in_len + 16 bytes). */
static int aes128_cbc(gen *g, const unsigned char aes_key[16], const unsigned char iv[16], const unsigned char *in,
                      size_t in_len, unsigned char *out, size_t *out_len) {
  mbedtls_cipher_context_t cipher;
  unsigned char iv_copy[16];
  int ret;
  mbedtls_cipher_init(&cipher);
  memcpy(iv_copy, iv, sizeof iv_copy);
  if ((ret = mbedtls_cipher_setup(&cipher, mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_128_CBC))) ||
      (ret = mbedtls_cipher_setkey(&cipher, aes_key, 128, MBEDTLS_ENCRYPT)) ||
      (ret = mbedtls_cipher_set_padding_mode(&cipher, MBEDTLS_PADDING_PKCS7)) ||
      (ret = mbedtls_cipher_crypt(&cipher, iv_copy, sizeof iv_copy, in, in_len, out, out_len)))
    ret = mbed_err(g, "AES-128-CBC", ret);
  mbedtls_cipher_free(&cipher);
  return ret;
}

/* The PEM text (allocated) around the base64 of the encrypted key, with the headers naming its cipher and IV. */
static char *encrypted_pem(const char *label, const unsigned char iv[16], const unsigned char *b64, size_t b64_len) {
  size_t cap = b64_len + b64_len / 64 + 256;
  char *pem = apns__malloc(cap);
  if (pem == NULL) return NULL;
  char iv_hex[33];
  hex_upper(iv_hex, iv, 16);
  size_t n = (size_t)snprintf(pem, cap, "-----BEGIN %s-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,%s\n\n",
                              label, iv_hex);
  for (size_t off = 0; off < b64_len; off += 64) {
    size_t chunk = b64_len - off < 64 ? b64_len - off : 64;
    memcpy(pem + n, b64 + off, chunk);
    n += chunk;
    pem[n++] = '\n';
  }
  snprintf(pem + n, cap - n, "-----END %s-----\n", label);
  return pem;
}

int apns__certgen_encrypt_key(const char *key_pem, const char *passphrase, char **out, char *errbuf, size_t errlen) {
  unsigned char der[PEM_MAX], iv[16], aes_key[16], *ct = NULL, *b64 = NULL;
  size_t der_len = 0, ct_len = 0, b64_len = 0;
  const char *label = NULL;
  gen g;
  int ret;

  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  g.errbuf = errbuf;
  g.errlen = errlen;
  if (key_pem == NULL || passphrase == NULL || strlen(passphrase) > 256) {
    set_err(&g, "a key and a passphrase of at most 256 bytes are needed");
    return APNS_EINVAL;
  }
  if ((ret = gen_init(&g, errbuf, errlen)) || (ret = key_der(&g, key_pem, der, &der_len, &label))) goto out;
  if ((ret = apns__certgen_rng(NULL, iv, sizeof iv))) {
    ret = mbed_err(&g, "random IV", ret);
    goto out;
  }
  if ((ret = pem_key_of_passphrase(&g, passphrase, iv, aes_key))) goto out;
  ct = apns__malloc(der_len + 16);
  if (ct == NULL) goto nomem;
  if ((ret = aes128_cbc(&g, aes_key, iv, der, der_len, ct, &ct_len))) goto out;

  mbedtls_base64_encode(NULL, 0, &b64_len, ct, ct_len);
  b64 = apns__malloc(b64_len);
  if (b64 == NULL) goto nomem;
  if ((ret = mbedtls_base64_encode(b64, b64_len, &b64_len, ct, ct_len))) {
    ret = mbed_err(&g, "base64", ret);
    goto out;
  }
  if ((*out = encrypted_pem(label, iv, b64, b64_len)) == NULL) goto nomem;
  ret = 0;
  goto out;
nomem:
  set_err(&g, "out of memory");
  ret = APNS_ENOMEM;
out:
  apns__zero(der, sizeof der);
  apns__zero(aes_key, sizeof aes_key);
  if (ct != NULL) apns__zero(ct, der_len + 16);
  apns__free(ct);
  if (b64 != NULL) apns__zero(b64, b64_len);
  apns__free(b64);
  return ret;
}

/* ---- token keys (.p8) ---- */

/* PrivateKeyInfo ::= SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, OCTET STRING
 * { ECPrivateKey } }, written backwards from the end of buf (asn1write's way). Returns the length (the DER is at
 * buf + cap - length) or a negative mbedTLS code. */
static int p8_der(mbedtls_pk_context *pk, unsigned char *buf, size_t cap) {
  unsigned char sec1[512];
  const char *oid;
  size_t oid_len;
  int n = mbedtls_pk_write_key_der(pk, sec1, sizeof sec1);
  if (n < 0) return n;
  unsigned char *p = buf + cap;
  int len = 0, alg = 0, r;
#define P8_PUT(acc, call)                                                                                            \
  do {                                                                                                               \
    if ((r = (call)) < 0) goto out;                                                                                  \
    acc += r;                                                                                                        \
  } while (0)
  P8_PUT(len, mbedtls_asn1_write_octet_string(&p, buf, sec1 + sizeof sec1 - n, (size_t)n));
  if ((r = mbedtls_oid_get_oid_by_ec_grp(MBEDTLS_ECP_DP_SECP256R1, &oid, &oid_len)) != 0) goto out;
  P8_PUT(alg, mbedtls_asn1_write_oid(&p, buf, oid, oid_len));
  P8_PUT(alg, mbedtls_asn1_write_oid(&p, buf, MBEDTLS_OID_EC_ALG_UNRESTRICTED,
                                     MBEDTLS_OID_SIZE(MBEDTLS_OID_EC_ALG_UNRESTRICTED)));
  P8_PUT(alg, mbedtls_asn1_write_len(&p, buf, (size_t)alg));
  P8_PUT(alg, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  len += alg;
  P8_PUT(len, mbedtls_asn1_write_int(&p, buf, 0));
  P8_PUT(len, mbedtls_asn1_write_len(&p, buf, (size_t)len));
  P8_PUT(len, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
#undef P8_PUT
  r = len;
out:
  apns__zero(sec1, sizeof sec1);
  return r;
}

int apns__certgen_p8_key(char **pem, char *errbuf, size_t errlen) {
  unsigned char der[800], text[1200];
  mbedtls_pk_context pk;
  size_t olen = 0;
  gen g;
  int ret;
  if (errbuf != NULL && errlen > 0) errbuf[0] = '\0';
  if (pem == NULL) return APNS_EINVAL;
  *pem = NULL;
  mbedtls_pk_init(&pk);
  if ((ret = gen_init(&g, errbuf, errlen)) != 0) goto out;
  if ((ret = make_key(&g, &pk)) != 0) goto out;
  int n = p8_der(&pk, der, sizeof der);
  if (n < 0) {
    ret = mbed_err(&g, "writing a PKCS#8 key", n);
    goto out;
  }
  ret = mbedtls_pem_write_buffer("-----BEGIN PRIVATE KEY-----\n", "-----END PRIVATE KEY-----\n", der + sizeof der - n,
                                 (size_t)n, text, sizeof text, &olen);
  if (ret != 0) {
    ret = mbed_err(&g, "writing a PKCS#8 PEM", ret);
    goto out;
  }
  apns__secret_record_pem("p8-pem", (const char *)text);
  if ((*pem = apns__strdup((const char *)text)) == NULL) {
    set_err(&g, "out of memory");
    ret = APNS_ENOMEM;
  }
out:
  apns__zero(der, sizeof der);
  apns__zero(text, sizeof text);
  mbedtls_pk_free(&pk);
  return ret;
}
