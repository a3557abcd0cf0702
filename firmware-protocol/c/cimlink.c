#include "cimlink.h"

#include <string.h>

uint32_t cimlink_crc32(const uint8_t *data, size_t len, uint32_t prev) {
  static uint32_t table[256];
  static int ready = 0;
  if (!ready) {
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = n;
      for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    ready = 1;
  }
  uint32_t c = prev ^ 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) c = table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

size_t cimlink_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst) {
  size_t code_at = 0, out = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == 0) {
      dst[code_at] = code;
      code_at = out++;
      code = 1;
    } else {
      dst[out++] = src[i];
      if (++code == 0xFF) {
        dst[code_at] = code;
        code_at = out++;
        code = 1;
      }
    }
  }
  dst[code_at] = code;
  return out;
}

long cimlink_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst) {
  size_t i = 0, out = 0;
  while (i < len) {
    uint8_t code = src[i];
    if (code == 0 || i + code > len) return -1;
    for (size_t j = i + 1; j < i + code; j++) {
      if (src[j] == 0) return -1;
      dst[out++] = src[j];
    }
    i += code;
    if (code != 0xFF && i < len) dst[out++] = 0;
  }
  return (long)out;
}

static void put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

size_t cimlink_build_raw(const cimlink_frame *f, uint8_t *raw) {
  raw[0] = f->version;
  raw[1] = f->flags;
  raw[2] = f->type;
  raw[3] = f->seq;
  put_u16(raw + 4, f->request_id);
  put_u16(raw + 6, f->payload_len);
  if (f->payload_len) memcpy(raw + CIMLINK_HEADER_SIZE, f->payload, f->payload_len);
  size_t n = CIMLINK_HEADER_SIZE + f->payload_len;
  uint32_t crc = cimlink_crc32(raw, n, 0);
  raw[n] = (uint8_t)crc;
  raw[n + 1] = (uint8_t)(crc >> 8);
  raw[n + 2] = (uint8_t)(crc >> 16);
  raw[n + 3] = (uint8_t)(crc >> 24);
  return n + CIMLINK_CRC_SIZE;
}

size_t cimlink_encode(const cimlink_frame *f, uint8_t *wire) {
  static uint8_t raw[CIMLINK_MAX_RAW];
  size_t n = cimlink_build_raw(f, raw);
  size_t w = cimlink_cobs_encode(raw, n, wire);
  wire[w] = 0;
  return w + 1;
}

enum cimlink_status cimlink_parse_raw(const uint8_t *raw, size_t len, cimlink_frame *f) {
  if (len < CIMLINK_HEADER_SIZE + CIMLINK_CRC_SIZE) return CIMLINK_E_SHORT;
  uint16_t plen = get_u16(raw + 6);
  if (len != (size_t)CIMLINK_HEADER_SIZE + plen + CIMLINK_CRC_SIZE) return CIMLINK_E_LENGTH;
  if (cimlink_crc32(raw, CIMLINK_HEADER_SIZE + plen, 0) != get_u32(raw + CIMLINK_HEADER_SIZE + plen)) return CIMLINK_E_CRC;
  f->version = raw[0];
  f->flags = raw[1];
  f->type = raw[2];
  f->seq = raw[3];
  f->request_id = get_u16(raw + 4);
  f->payload_len = plen;
  f->payload = raw + CIMLINK_HEADER_SIZE;
  if (f->version != CIMLINK_PROTOCOL_MAJOR) return CIMLINK_E_VERSION;
  if (f->flags & (uint8_t)~CIMLINK_KNOWN_FLAGS) return CIMLINK_E_FLAGS;
  return CIMLINK_OK;
}

void cimlink_rx_init(cimlink_rx *rx, size_t max_payload) {
  rx->fill = 0;
  rx->overflow = 0;
  rx->max_payload = max_payload > CIMLINK_MAX_PAYLOAD ? CIMLINK_MAX_PAYLOAD : max_payload;
}

int cimlink_rx_byte(cimlink_rx *rx, uint8_t byte, cimlink_frame *f) {
  if (byte != 0) {
    size_t limit = CIMLINK_COBS_MAX(CIMLINK_HEADER_SIZE + rx->max_payload + CIMLINK_CRC_SIZE);
    if (rx->fill >= limit) rx->overflow = 1;
    else rx->enc[rx->fill++] = byte;
    return -1;
  }
  if (rx->overflow) {
    rx->fill = 0;
    rx->overflow = 0;
    return CIMLINK_E_OVERSIZE;
  }
  if (rx->fill == 0) return -1; /* idle delimiter */
  long n = cimlink_cobs_decode(rx->enc, rx->fill, rx->raw);
  rx->fill = 0;
  if (n < 0) return CIMLINK_E_COBS;
  return cimlink_parse_raw(rx->raw, (size_t)n, f);
}
