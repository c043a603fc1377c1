#include "vnetd_session.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define WINDOW 1024
#define SEQ_LIMIT (1ULL << 48)
#define MAGIC 0x76736573u /* "vses": a guard against other externals passed in by mistake */

struct vs_session {
  uint32_t magic;
  int refs;
  EVP_CIPHER_CTX *tx, *rx;
  int encrypt;
  /* 1: UDP, each sequence number once within WINDOW (RFC 6479's bitmap); 0: TCP, exactly the next one. */
  int window;
  uint16_t tag;
  uint64_t tx_seq;
  uint64_t rx_next;
  int64_t top;
  uint32_t bits[WINDOW / 32];
  /* Opening deciphers here first: a record that fails stays as it came (UDP may try it under another session). */
  unsigned char *scratch;
  size_t scratch_size;
};

static EVP_CIPHER_CTX *new_context(const unsigned char *key, int sealing) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (c && EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, NULL, NULL, sealing) == 1 &&
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
      EVP_CipherInit_ex(c, NULL, NULL, key, NULL, sealing) == 1)
    return c;
  EVP_CIPHER_CTX_free(c);
  return NULL;
}

static void nonce_for(unsigned char nonce[NONCE_BYTES], uint64_t seq) {
  memset(nonce, 0, NONCE_BYTES);
  for (int i = 0; i < 8; i++) nonce[NONCE_BYTES - 1 - i] = (unsigned char)(seq >> (8 * i));
}

static uint64_t read_seq(const unsigned char *rec) {
  uint64_t seq = 0;
  for (int i = 3; i < 9; i++) seq = (seq << 8) | rec[i];
  return seq;
}

int vs_seal(vs_session *s, unsigned type, unsigned char *rec, size_t h, size_t len) {
  if (s->tx_seq >= SEQ_LIMIT) return VS_SPENT;
  uint64_t seq = s->tx_seq++;
  unsigned char *hdr = rec + h, *body = hdr + VS_HEADER_BYTES, *tag = body + len, nonce[NONCE_BYTES], final[16];
  int n;
  hdr[0] = (unsigned char)type;
  hdr[1] = (unsigned char)(s->tag >> 8);
  hdr[2] = (unsigned char)s->tag;
  for (int i = 0; i < 6; i++) hdr[3 + i] = (unsigned char)(seq >> (8 * (5 - i)));
  nonce_for(nonce, seq);
  /* Auth-only: the whole record is additional data and nothing is enciphered. */
  size_t aad = s->encrypt ? VS_HEADER_BYTES : VS_HEADER_BYTES + len;
  if (EVP_CipherInit_ex(s->tx, NULL, NULL, NULL, nonce, 1) != 1 || EVP_CipherUpdate(s->tx, NULL, &n, hdr, (int)aad) != 1 ||
      (s->encrypt && len > 0 && EVP_CipherUpdate(s->tx, body, &n, body, (int)len) != 1) || EVP_CipherFinal_ex(s->tx, final, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(s->tx, EVP_CTRL_AEAD_GET_TAG, VS_TAG_BYTES, tag) != 1)
    return VS_FAILED;
  return 0;
}

static int window_admits(const vs_session *s, uint64_t seq) {
  if ((int64_t)seq > s->top) return 1;
  if ((uint64_t)s->top - seq >= WINDOW) return 0;
  unsigned i = seq % WINDOW;
  return (s->bits[i >> 5] & (1u << (i & 31))) == 0;
}

static void window_mark(vs_session *s, uint64_t seq) {
  if ((int64_t)seq > s->top) {
    uint64_t advance = seq - (uint64_t)s->top;
    if (advance >= WINDOW) memset(s->bits, 0, sizeof s->bits);
    else
      for (uint64_t q = (uint64_t)(s->top + 1); q <= seq; q++) s->bits[(q % WINDOW) >> 5] &= ~(1u << ((q % WINDOW) & 31));
    s->top = (int64_t)seq;
  }
  unsigned i = seq % WINDOW;
  s->bits[i >> 5] |= 1u << (i & 31);
}

int vs_open(vs_session *s, unsigned char *rec, size_t len) {
  if (len < VS_OVERHEAD || len > 0x7fffffff) return VS_MALFORMED;
  /* Another session's record (or a guess) is refused before paying for authentication. */
  if (((unsigned)rec[1] << 8 | rec[2]) != s->tag) return VS_MALFORMED;
  uint64_t seq = read_seq(rec);
  /* Judged now, said only once the record proves authentic: a stray record that carries
     the tag and an old number is a forgery, not a replay, and must not be counted as one. */
  int admitted = s->window ? window_admits(s, seq) : seq == s->rx_next;
  size_t data_len = len - VS_OVERHEAD;
  unsigned char *body = rec + VS_HEADER_BYTES, *tag = body + data_len, nonce[NONCE_BYTES], final[16];
  size_t aad = s->encrypt ? VS_HEADER_BYTES : VS_HEADER_BYTES + data_len;
  int n;
  if (s->encrypt && data_len > s->scratch_size) {
    unsigned char *grown = realloc(s->scratch, data_len);
    if (!grown) return VS_AUTH;
    s->scratch = grown;
    s->scratch_size = data_len;
  }
  nonce_for(nonce, seq);
  if (EVP_CipherInit_ex(s->rx, NULL, NULL, NULL, nonce, 0) != 1 || EVP_CipherUpdate(s->rx, NULL, &n, rec, (int)aad) != 1 ||
      (s->encrypt && data_len > 0 && EVP_CipherUpdate(s->rx, s->scratch, &n, body, (int)data_len) != 1) ||
      EVP_CIPHER_CTX_ctrl(s->rx, EVP_CTRL_AEAD_SET_TAG, VS_TAG_BYTES, tag) != 1 || EVP_CipherFinal_ex(s->rx, final, &n) != 1)
    return VS_AUTH;
  if (!admitted) return VS_REPLAY;
  /* An empty record never grew the scratch buffer: NULL, which memcpy may not be given even for no bytes. */
  if (s->encrypt && data_len > 0) memcpy(body, s->scratch, data_len);
  /* Marked only once authentic, so forgeries cannot slide the window. */
  if (s->window) window_mark(s, seq);
  else s->rx_next++;
  return rec[0];
}

void vs_retain(vs_session *s) { s->refs++; }

void vs_release(vs_session *s) {
  if (--s->refs > 0) return;
  EVP_CIPHER_CTX_free(s->tx);
  EVP_CIPHER_CTX_free(s->rx);
  free(s->scratch);
  s->magic = 0;
  free(s);
}

static napi_value fail(napi_env env, const char *why) {
  napi_throw_error(env, NULL, why);
  return NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  vs_release((vs_session *)data);
}

vs_session *vs_unwrap(napi_env env, napi_value handle) {
  void *p = NULL;
  if (napi_get_value_external(env, handle, &p) != napi_ok || !p || ((vs_session *)p)->magic != MAGIC) {
    napi_throw_type_error(env, NULL, "not a session handle");
    return NULL;
  }
  return (vs_session *)p;
}

/* session(txKey, rxKey, encrypt, tag, window) -> handle */
static napi_value session(napi_env env, napi_callback_info info) {
  size_t argc = 5, tx_len, rx_len;
  napi_value argv[5], handle;
  void *tx_key, *rx_key;
  bool encrypt, window;
  uint32_t tag;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_buffer_info(env, argv[0], &tx_key, &tx_len) != napi_ok || napi_get_buffer_info(env, argv[1], &rx_key, &rx_len) != napi_ok ||
      napi_get_value_bool(env, argv[2], &encrypt) != napi_ok || napi_get_value_uint32(env, argv[3], &tag) != napi_ok ||
      napi_get_value_bool(env, argv[4], &window) != napi_ok)
    return fail(env, "session(txKey, rxKey, encrypt, tag, window)");
  if (tx_len != KEY_BYTES || rx_len != KEY_BYTES) return fail(env, "session keys must be 32 bytes");
  vs_session *s = calloc(1, sizeof *s);
  if (!s) return fail(env, "out of memory");
  s->magic = MAGIC;
  s->refs = 1;
  s->encrypt = encrypt;
  s->window = window;
  s->tag = (uint16_t)tag;
  s->top = -1;
  s->tx = new_context(tx_key, 1);
  s->rx = new_context(rx_key, 0);
  if (!s->tx || !s->rx) {
    vs_release(s);
    return fail(env, "OpenSSL refused ChaCha20-Poly1305");
  }
  if (napi_create_external(env, s, finalize, NULL, &handle) != napi_ok) {
    vs_release(s);
    return fail(env, "cannot wrap the session");
  }
  return handle;
}

/* sealRecord(handle, type, record, headroom, length) -> the sequence number used, or -1 when they are spent; throws if OpenSSL fails */
static napi_value seal(napi_env env, napi_callback_info info) {
  size_t argc = 5, len;
  napi_value argv[5], out;
  uint32_t type, h, length;
  unsigned char *rec;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) return fail(env, "sealRecord(handle, type, record, headroom, length)");
  vs_session *s = vs_unwrap(env, argv[0]);
  if (!s) return NULL;
  if (napi_get_value_uint32(env, argv[1], &type) != napi_ok || napi_get_buffer_info(env, argv[2], (void **)&rec, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &h) != napi_ok || napi_get_value_uint32(env, argv[4], &length) != napi_ok)
    return fail(env, "sealRecord(handle, type, record, headroom, length)");
  if (type > 0xff || (size_t)h + VS_OVERHEAD + length > len || length > 0x7fffffff) return fail(env, "record bounds out of range");
  uint64_t seq = s->tx_seq;
  int r = vs_seal(s, type, rec, h, length);
  if (r == VS_FAILED) return fail(env, "OpenSSL failed to seal a record");
  napi_create_double(env, r == VS_SPENT ? -1 : (double)seq, &out);
  return out;
}

/* openRecord(handle, record) -> the record's type, or -1 malformed, -2 authentic but replayed or out of order, -3 not authentic */
static napi_value open_record(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], out;
  unsigned char *rec;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return fail(env, "openRecord(handle, record)");
  vs_session *s = vs_unwrap(env, argv[0]);
  if (!s) return NULL;
  if (napi_get_buffer_info(env, argv[1], (void **)&rec, &len) != napi_ok) return fail(env, "openRecord(handle, record)");
  napi_create_int32(env, vs_open(s, rec, len), &out);
  return out;
}

napi_status vs_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"session", NULL, session, NULL, NULL, NULL, napi_default, NULL},
      {"sealRecord", NULL, seal, NULL, NULL, NULL, napi_default, NULL},
      {"openRecord", NULL, open_record, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
