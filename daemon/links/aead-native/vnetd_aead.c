/*
 * ChaCha20-Poly1305 for vnetd's link records, with one OpenSSL context per
 * direction of a session, reused for every record. node:crypto can only make
 * a new cipher object per message (its nonce is fixed at creation), and on
 * the data path that object cost more than the cipher itself. The records
 * are the same bytes either way: daemon/links/crypto.ts uses this when it was
 * built and node:crypto when not, and the tests check one against the other.
 *
 * OpenSSL is the one inside Node (its symbols are resolved from the node
 * binary, its headers ship with Node's), so nothing is linked here.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16

typedef struct {
  EVP_CIPHER_CTX *ctx;
  int encrypt;
  /* Opening decrypts here first: a record that fails is left as it came (UDP may try it under another session). */
  unsigned char *scratch;
  size_t scratch_size;
} aead_t;

static napi_value fail(napi_env env, const char *why) {
  napi_throw_error(env, NULL, why);
  return NULL;
}

static void release(napi_env env, void *data, void *hint) {
  aead_t *a = (aead_t *)data;
  (void)env;
  (void)hint;
  EVP_CIPHER_CTX_free(a->ctx);
  free(a->scratch);
  free(a);
}

/* context(key: 32 bytes, sealing: boolean) -> handle */
static napi_value context(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], handle;
  void *key;
  bool sealing;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return fail(env, "context(key, sealing)");
  if (napi_get_buffer_info(env, argv[0], &key, &len) != napi_ok || len != KEY_BYTES) return fail(env, "the key must be 32 bytes");
  if (napi_get_value_bool(env, argv[1], &sealing) != napi_ok) return fail(env, "sealing must be a boolean");
  aead_t *a = calloc(1, sizeof *a);
  if (!a) return fail(env, "out of memory");
  a->encrypt = sealing ? 1 : 0;
  a->ctx = EVP_CIPHER_CTX_new();
  if (!a->ctx || EVP_CipherInit_ex(a->ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, a->encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_BYTES, NULL) != 1 ||
      EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, a->encrypt) != 1) {
    EVP_CIPHER_CTX_free(a->ctx);
    free(a);
    return fail(env, "OpenSSL refused ChaCha20-Poly1305");
  }
  if (napi_create_external(env, a, release, NULL, &handle) != napi_ok) {
    release(env, a, NULL);
    return fail(env, "cannot wrap the context");
  }
  return handle;
}

/*
 * run(handle, record, seq, aadStart, dataStart, dataEnd) -> boolean
 * Authenticates record[aadStart, dataStart) and record[dataStart, dataEnd),
 * encrypting or decrypting the latter in place (it may be empty: auth-only).
 * Sealing writes the tag at dataEnd; opening checks the tag found there, and
 * returns false, the record unchanged, when it is not authentic.
 */
static napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 6, len;
  napi_value argv[6], out;
  void *ext;
  unsigned char *rec;
  int64_t seq;
  uint32_t aad_start, data_start, data_end;
  int n, ok = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_external(env, argv[0], &ext) != napi_ok ||
      napi_get_buffer_info(env, argv[1], (void **)&rec, &len) != napi_ok ||
      napi_get_value_int64(env, argv[2], &seq) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &aad_start) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &data_start) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &data_end) != napi_ok)
    return fail(env, "run(handle, record, seq, aadStart, dataStart, dataEnd)");
  if (!(aad_start <= data_start && data_start <= data_end && (size_t)data_end + TAG_BYTES <= len) || data_end > 0x7fffffff || seq < 0)
    return fail(env, "record bounds out of range");
  aead_t *a = (aead_t *)ext;
  /* The nonce: 4 zero bytes, then the sequence number as 8 big-endian bytes. */
  unsigned char nonce[NONCE_BYTES] = {0};
  for (int i = 0; i < 8; i++) nonce[NONCE_BYTES - 1 - i] = (unsigned char)((uint64_t)seq >> (8 * i));
  unsigned char *tag = rec + data_end;
  size_t data_len = data_end - data_start;
  unsigned char *dest = rec + data_start;
  if (!a->encrypt && data_len > 0) {
    if (data_len > a->scratch_size) {
      unsigned char *grown = realloc(a->scratch, data_len);
      if (!grown) return fail(env, "out of memory");
      a->scratch = grown;
      a->scratch_size = data_len;
    }
    dest = a->scratch;
  }
  if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, a->encrypt) == 1 &&
      (data_start == aad_start || EVP_CipherUpdate(a->ctx, NULL, &n, rec + aad_start, (int)(data_start - aad_start)) == 1) &&
      (data_len == 0 || EVP_CipherUpdate(a->ctx, dest, &n, rec + data_start, (int)data_len) == 1) &&
      (a->encrypt || EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) == 1)) {
    unsigned char final[16];
    ok = EVP_CipherFinal_ex(a->ctx, final, &n) == 1;
    if (ok && a->encrypt) ok = EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) == 1;
    if (ok && dest != rec + data_start) memcpy(rec + data_start, dest, data_len);
  }
  napi_get_boolean(env, ok, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"context", NULL, context, NULL, NULL, NULL, napi_default, NULL},
      {"run", NULL, run, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
