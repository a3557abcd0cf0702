/*
 * cimlink: reference C codec for the cimbench macro protocol v1 (see ../PROTOCOL.md).
 * COBS framing, CRC-32/ISO-HDLC, the 8-byte header, and a streaming frame receiver.
 * C99, no allocation, no dependencies: a starting point for firmware.
 */
#ifndef CIMLINK_H
#define CIMLINK_H

#include <stddef.h>
#include <stdint.h>

#define CIMLINK_PROTOCOL_MAJOR 1u
#define CIMLINK_PROTOCOL_MINOR 0u
#define CIMLINK_HEADER_SIZE 8u
#define CIMLINK_CRC_SIZE 4u
#define CIMLINK_MAX_PAYLOAD 4096u
/* Largest raw frame and its largest COBS encoding (without the 0x00 delimiter). */
#define CIMLINK_MAX_RAW (CIMLINK_HEADER_SIZE + CIMLINK_MAX_PAYLOAD + CIMLINK_CRC_SIZE)
#define CIMLINK_COBS_MAX(n) ((n) + 1u + (n) / 254u)
#define CIMLINK_MAX_WIRE (CIMLINK_COBS_MAX(CIMLINK_MAX_RAW) + 1u)

/* Header flags; bits 4..7 are reserved and make a frame invalid. */
#define CIMLINK_FLAG_RESPONSE 0x01u
#define CIMLINK_FLAG_PROGRESS 0x02u
#define CIMLINK_FLAG_ERROR 0x04u
#define CIMLINK_FLAG_DUPLICATE 0x08u
#define CIMLINK_KNOWN_FLAGS 0x0fu

enum cimlink_type {
  CIMLINK_HELLO = 0x01, CIMLINK_PING = 0x02, CIMLINK_GET_CONFIG = 0x03, CIMLINK_SET_CONFIG = 0x04,
  CIMLINK_GET_COUNTERS = 0x05, CIMLINK_GET_EVENTS = 0x06, CIMLINK_RESET = 0x07, CIMLINK_SAFE_STATE = 0x08,
  CIMLINK_CANCEL = 0x09, CIMLINK_ADVANCE_CLOCK = 0x0a, CIMLINK_PROGRAM = 0x10, CIMLINK_READ_CELLS = 0x11,
  CIMLINK_MVM = 0x12, CIMLINK_LOAD_NETWORK = 0x13, CIMLINK_INFER = 0x14
};

enum cimlink_err {
  CIMLINK_ERR_UNKNOWN_TYPE = 1, CIMLINK_ERR_BAD_VERSION = 2, CIMLINK_ERR_BAD_LENGTH = 3, CIMLINK_ERR_OUT_OF_RANGE = 4,
  CIMLINK_ERR_LIMIT = 5, CIMLINK_ERR_BUSY = 6, CIMLINK_ERR_SAFE_STATE = 7, CIMLINK_ERR_UNSUPPORTED = 8,
  CIMLINK_ERR_CANCELLED = 9, CIMLINK_ERR_BAD_NETWORK = 10, CIMLINK_ERR_NO_NETWORK = 11, CIMLINK_ERR_TOO_LARGE = 12,
  CIMLINK_ERR_INTERNAL = 13
};

/* Why a received frame was dropped (one counter each). */
enum cimlink_status {
  CIMLINK_OK = 0,
  CIMLINK_E_COBS,     /* not valid COBS */
  CIMLINK_E_SHORT,    /* shorter than header + CRC */
  CIMLINK_E_LENGTH,   /* length field disagrees with the frame size (truncated or padded) */
  CIMLINK_E_CRC,      /* CRC mismatch */
  CIMLINK_E_OVERSIZE, /* more bytes than the largest frame before a delimiter */
  CIMLINK_E_FLAGS,    /* reserved flag bits set */
  CIMLINK_E_VERSION   /* another protocol major version; header fields are still valid */
};

typedef struct {
  uint8_t version;
  uint8_t flags;
  uint8_t type;
  uint8_t seq;
  uint16_t request_id;
  uint16_t payload_len;
  const uint8_t *payload; /* points into the caller's buffer */
} cimlink_frame;

uint32_t cimlink_crc32(const uint8_t *data, size_t len, uint32_t prev);

/* COBS: returns bytes written; dst must hold CIMLINK_COBS_MAX(len). */
size_t cimlink_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst);
/* Returns the decoded length, or -1 if src is not valid COBS. dst must hold len bytes. */
long cimlink_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst);

/* Builds header + payload + CRC into raw (size CIMLINK_HEADER_SIZE + payload_len + 4); returns the size. */
size_t cimlink_build_raw(const cimlink_frame *f, uint8_t *raw);
/* Raw frame -> COBS + 0x00 delimiter into wire (CIMLINK_MAX_WIRE bytes); returns the wire length. */
size_t cimlink_encode(const cimlink_frame *f, uint8_t *wire);
/* Checks a decoded raw frame and fills *f (payload points into raw). */
enum cimlink_status cimlink_parse_raw(const uint8_t *raw, size_t len, cimlink_frame *f);

/*
 * Streaming receiver: feed bytes one at a time from the UART interrupt or a DMA buffer. Every
 * non-empty run of bytes before a 0x00 ends as exactly one frame (CIMLINK_OK) or one error.
 */
typedef struct {
  uint8_t enc[CIMLINK_COBS_MAX(CIMLINK_MAX_RAW)];
  uint8_t raw[CIMLINK_MAX_RAW];
  size_t fill;
  size_t max_payload;
  int overflow;
} cimlink_rx;

void cimlink_rx_init(cimlink_rx *rx, size_t max_payload);
/* Returns -1 while a frame is incomplete (or for an idle 0x00), else a cimlink_status; *f is set for OK and VERSION. */
int cimlink_rx_byte(cimlink_rx *rx, uint8_t byte, cimlink_frame *f);

#endif
